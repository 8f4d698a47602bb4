"""Model events, in the django-rest-hooks style, without its leak: you say how each model becomes a payload.

::

    HOOKHUB = {"MODEL_EVENTS": {
        "book.created": {
            "MODEL": "library.Book",
            "ACTION": "created",                           # created | updated | deleted
            "SERIALIZER": "library.hooks.book_payload",     # instance -> JSON-able payload (required)
            "APPLICATION": "library.hooks.book_customer",   # instance -> Application | uid | None (None: skip)
        },
    }}

There is no default serializer: dumping every field is how such libraries have leaked password hashes. The event is
sent with ``send()`` from the model signal, so it joins the transaction that saved the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.db import models
from django.db.models.signals import post_delete, post_save
from django.utils.module_loading import import_string

from hookhub.conf import conf

ACTIONS = frozenset({"created", "updated", "deleted"})


def problems(name: str, config: Mapping[str, Any]) -> list[str]:
    """What is wrong with one MODEL_EVENTS entry (for the system check)."""
    found = []
    try:
        apps.get_model(str(config.get("MODEL", "")))
    except (LookupError, ValueError):
        found.append(f"MODEL {config.get('MODEL')!r} is not an installed model ('app_label.ModelName')")
    if config.get("ACTION") not in ACTIONS:
        found.append(f"ACTION must be one of {', '.join(sorted(ACTIONS))}")
    for key in ("SERIALIZER", "APPLICATION"):
        try:
            if not callable(import_string(str(config.get(key, "")))):
                found.append(f"{key} is not callable")
        except ImportError:
            found.append(f"{key} {config.get(key)!r} cannot be imported")
    return found


def _fire(instance: models.Model, action: str) -> None:
    label = instance._meta.label
    for event_type, config in conf.MODEL_EVENTS.items():
        if config.get("ACTION") != action or str(config.get("MODEL", "")).lower() != label.lower():
            continue
        application = import_string(config["APPLICATION"])(instance)
        if application is None:
            continue
        payload = import_string(config["SERIALIZER"])(instance)
        from .publish import send

        send(event_type, payload, application=application)


def _saved(sender: type[models.Model], instance: models.Model, created: bool, raw: bool = False, **_: Any) -> None:
    if not raw:  # raw: loading fixtures is not an event
        _fire(instance, "created" if created else "updated")


def _deleted(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    _fire(instance, "deleted")


_connected: list[type[models.Model]] = []


def connect(**_: Any) -> None:
    """Listen to the configured models only: a ``post_delete`` receiver on every model would turn off Django's fast
    delete for every cascade in the project. Runs again when ``HOOKHUB`` changes (``override_settings``)."""
    for model in _connected:
        post_save.disconnect(_saved, sender=model)
        post_delete.disconnect(_deleted, sender=model)
    _connected.clear()
    for config in conf.MODEL_EVENTS.values():
        try:
            model = apps.get_model(str(config.get("MODEL", "")))
        except (LookupError, ValueError):
            continue  # reported by the hookhub.E006 check
        if model not in _connected:
            post_save.connect(_saved, sender=model)
            post_delete.connect(_deleted, sender=model)
            _connected.append(model)


def on_setting_changed(setting: str, **kwargs: Any) -> None:
    if setting == "HOOKHUB":
        connect()
