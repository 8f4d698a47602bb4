"""Model events, in the django-rest-hooks style, without its leak: you say how each model becomes a payload.

::

    HOOKHUB = {"MODEL_EVENTS": {
        "book.created": {
            "MODEL": "library.Book",
            "ACTION": "created",                           # created | updated | deleted
            "SERIALIZER": "library.hooks.book_payload",     # instance -> JSON-able payload (required)
            "APPLICATION": "library.hooks.book_customer",   # instance -> Application | uid | None (None: skip)
        },
        "book.updated": {
            "MODEL": "library.Book",
            "ACTION": "updated",
            "SERIALIZER": "library.hooks.book_payload",
            "APPLICATION": "library.hooks.book_customer",
            "FIELDS": ["title", "price"],                  # only a change of these sends the event
            "PREVIOUS_ATTRIBUTES": True,                   # payload["previous_attributes"]: what they were
        },
    }}

There is no default serializer: dumping every field is how such libraries have leaked password hashes. The event is
sent with ``send()`` from the model signal, so it joins the transaction that saved the model; the saves of one object
in one transaction are one event (``model_changes`` says how).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models.signals import post_delete, post_init, post_save
from django.utils.module_loading import import_string

from hookhub.conf import conf
from hookhub.models import Message

from . import model_changes
from .model_changes import Transaction, Written

ACTIONS = frozenset({"created", "updated", "deleted"})
KEYS = ("MODEL", "ACTION", "SERIALIZER", "APPLICATION", "FIELDS", "PREVIOUS_ATTRIBUTES")
PREVIOUS = "previous_attributes"  # the payload key


def problems(name: str, config: Mapping[str, Any]) -> list[str]:
    """What is wrong with one MODEL_EVENTS entry (for the system check)."""
    found = []
    unknown = [str(key) for key in config if key not in KEYS]
    if unknown:
        found.append(f"unknown key {', '.join(map(repr, unknown))} (the keys are {', '.join(KEYS)})")
    model: type[models.Model] | None = None
    try:
        model = apps.get_model(str(config.get("MODEL", "")))
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
    for key in ("FIELDS", "PREVIOUS_ATTRIBUTES"):
        if key in config and config.get("ACTION") != "updated":
            found.append(f"{key} applies to ACTION 'updated' only")
    if not isinstance(config.get("PREVIOUS_ATTRIBUTES", False), bool):
        found.append("PREVIOUS_ATTRIBUTES must be True or False")
    if "FIELDS" in config:
        found.extend(_field_problems(config["FIELDS"], model))
    return found


def _field_problems(names: Any, model: type[models.Model] | None) -> list[str]:
    if not isinstance(names, list | tuple) or not names or not all(isinstance(n, str) for n in names):
        return ["FIELDS must be a non-empty list of field names"]
    if model is None:
        return []
    found = []
    for name in names:
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist:
            found.append(f"FIELDS: {model._meta.label} has no field {name!r}")
            continue
        if model_field not in model._meta.concrete_fields:
            found.append(f"FIELDS: {name!r} is not a column of {model._meta.label} (save() does not write it)")
    return found


def _call(config: Mapping[str, Any], key: str, instance: models.Model) -> Any:
    function: Callable[[models.Model], Any] = import_string(config[key])
    return function(instance)


def _watched(config: Mapping[str, Any], model: type[models.Model]) -> frozenset[str] | None:
    """The attnames of the FIELDS whose change sends the update event (None: any save sends it)."""
    if not config.get("FIELDS"):
        return None
    fields = {f.name: f.attname for f in model._meta.concrete_fields}
    return frozenset(fields.get(name, name) for name in config["FIELDS"])  # a name, or already an attname


def _payload(event_type: str, config: Mapping[str, Any], instance: models.Model, obj: Written) -> Any:
    """The payload of this event for the object as it is now, or None when it sends nothing."""
    watched = _watched(config, obj.model) if not obj.created else None
    if watched is not None and not obj.changed() & watched:
        return None  # none of its FIELDS changed
    payload = _call(config, "SERIALIZER", instance)
    if obj.created or not config.get("PREVIOUS_ATTRIBUTES"):
        return payload
    if not isinstance(payload, dict) or PREVIOUS in payload:
        raise ImproperlyConfigured(
            f"HOOKHUB['MODEL_EVENTS'][{event_type!r}]: with PREVIOUS_ATTRIBUTES the SERIALIZER must return a dict "
            f"without a {PREVIOUS!r} key, not {type(payload).__name__}."
        )
    if event_type not in obj.old_payloads:
        obj.old_payloads[event_type] = _call(config, "SERIALIZER", obj.as_before(instance))
    changes = model_changes.previous_attributes(obj.old_payloads[event_type], payload)
    if not changes and not obj.unknown():
        return None  # nothing the customer sees has changed
    return {**payload, PREVIOUS: changes}


def _publish(event_type: str, config: Mapping[str, Any], instance: models.Model, obj: Written) -> None:
    from .publish import send

    def write() -> Message | None:
        application = _call(config, "APPLICATION", instance)
        payload = None if application is None else _payload(event_type, config, instance, obj)
        return None if payload is None else send(event_type, payload, application=application)

    obj.replace(event_type, write)


def _saved(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    raw: bool = False,
    update_fields: Any = None,
    **_: Any,
) -> None:
    if raw or sender not in _on_save:  # raw: loading fixtures is not an event
        return
    values = model_changes.written(sender, instance, update_fields)
    loaded = model_changes.saved(instance, values)
    record = Transaction.current()
    key = (sender._meta.label, instance.pk)
    obj = record.objects.get(key) if record is not None else None
    if obj is None:
        obj = Written(sender, created, dict(loaded or {}))
        if record is not None:
            record.objects[key] = obj
    obj.after.update(values)
    action = "created" if obj.created else "updated"  # created, then saved again: still the one created event
    for event_type, config in _events.get(sender, ()):
        if config.get("ACTION") == action:
            _publish(event_type, config, instance, obj)


def _deleted(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    from .publish import send

    record = Transaction.current(create=False)
    if record is not None:
        record.objects.pop((sender._meta.label, instance.pk), None)  # what was sent about it stays
    for event_type, config in _events.get(sender, ()):
        if config.get("ACTION") == "deleted":
            application = _call(config, "APPLICATION", instance)
            if application is not None:
                send(event_type, _call(config, "SERIALIZER", instance), application=application)


_events: dict[type[models.Model], list[tuple[str, Mapping[str, Any]]]] = {}
_on_save: set[type[models.Model]] = set()  # the models with a created or updated event


def connect(**_: Any) -> None:
    """Listen to the configured models only: a ``post_delete`` receiver on every model would turn off Django's fast
    delete for every cascade in the project, and a ``post_init`` one (what an instance was loaded with) is needed
    only by update events with ``FIELDS`` or ``PREVIOUS_ATTRIBUTES``. Runs again when ``HOOKHUB`` changes
    (``override_settings``)."""
    for model in _events:
        post_save.disconnect(_saved, sender=model)
        post_delete.disconnect(_deleted, sender=model)
        post_init.disconnect(model_changes.snapshot, sender=model)
    _events.clear()
    _on_save.clear()
    for event_type, config in conf.MODEL_EVENTS.items():
        try:
            model = apps.get_model(str(config.get("MODEL", "")))
        except (LookupError, ValueError):
            continue  # reported by the hookhub.E006 check
        if model not in _events:
            post_save.connect(_saved, sender=model)
            post_delete.connect(_deleted, sender=model)
        _events.setdefault(model, []).append((event_type, config))
        if config.get("ACTION") in ("created", "updated"):
            _on_save.add(model)
        if config.get("ACTION") == "updated" and (config.get("FIELDS") or config.get("PREVIOUS_ATTRIBUTES")):
            post_init.connect(model_changes.snapshot, sender=model)


def on_setting_changed(setting: str, **kwargs: Any) -> None:
    if setting == "HOOKHUB":
        connect()
