"""Verifier lookup: a name is a module of this package, or a dotted path to a ``Verifier`` subclass."""

from __future__ import annotations

import functools
import importlib
import pkgutil

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import COMMON_OPTIONS, Event, Reply, SignedRequest, Verifier, WebhookRequest

__all__ = [
    "COMMON_OPTIONS",
    "Event",
    "Reply",
    "SignedRequest",
    "Verifier",
    "WebhookRequest",
    "available",
    "get_verifier_class",
]

_INTERNAL = {"base", "common"}


@functools.cache
def get_verifier_class(name: str) -> type[Verifier]:
    if "." in name:
        cls = import_string(name)
    else:
        module_name = name.replace("-", "_")
        if module_name in _INTERNAL or not module_name.isidentifier():
            raise ImproperlyConfigured(f"Unknown verifier {name!r}. Known: {', '.join(available())}.")
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module_name}":
                raise
            raise ImproperlyConfigured(f"Unknown verifier {name!r}. Known: {', '.join(available())}.") from None
        cls = module.VERIFIER
    if not (isinstance(cls, type) and issubclass(cls, Verifier)):
        raise ImproperlyConfigured(f"{name!r} is not a Verifier subclass.")
    return cls


@functools.cache
def available() -> tuple[str, ...]:
    """The built-in verifier names, as used in settings and on the command line."""
    names = [
        m.name.replace("_", "-")
        for m in pkgutil.iter_modules(__path__)
        if m.name not in _INTERNAL and not m.name.startswith("_")
    ]
    return tuple(sorted(names))
