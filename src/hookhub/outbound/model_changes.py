"""What a save changed, and what one transaction wrote about one object: the bookkeeping behind model events.

- **What was loaded.** For models whose update events need it (``FIELDS`` or ``PREVIOUS_ATTRIBUTES``), a
  ``post_init`` receiver keeps the field values an instance was loaded with (``snapshot``), and each save moves
  them on to what it wrote. Nothing is read from the database for it; deferred fields are not known, and a field
  whose old value is not known counts as changed (an event too many rather than one lost).
- **One transaction, one event per object.** ``Transaction.current()`` is the record of the database transaction
  now open: it is registered with ``transaction.on_commit``, so it lives exactly as long as the transaction (Django
  drops it on a rollback, of the whole transaction or of the savepoint it was made in, and forgets it after the
  commit). Django has no "before commit" hook, so the event cannot wait for the last save: the first save writes
  its message, and each later save of the same object in the same transaction replaces it (deletes what this
  transaction wrote for it, writes the message of the new state). At every moment the transaction holds one
  message with the latest state, so a commit never loses the event and a rollback takes it away.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, router, transaction

from hookhub.models import Message

SNAPSHOT = "_hookhub_loaded"  # the instance attribute holding what it was loaded with (or last saved)
_UNKNOWN = object()


def _keep(value: Any) -> Any:
    """A value safe from later changes in place (a JSONField's dict or list)."""
    return copy.deepcopy(value) if isinstance(value, dict | list | set | bytearray) else value


def snapshot(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    """``post_init`` receiver: remember the values the instance was loaded (or built) with."""
    values = instance.__dict__
    values[SNAPSHOT] = {
        f.attname: _keep(values[f.attname]) for f in sender._meta.concrete_fields if f.attname in values
    }


def written(model: type[models.Model], instance: models.Model, update_fields: Any) -> dict[str, Any]:
    """The values a save wrote, by attname: ``update_fields`` (names or attnames) when given, else every loaded
    concrete field (Django saves only the loaded ones of an instance with deferred fields)."""
    fields = list(model._meta.concrete_fields)
    if update_fields is not None:
        names = set(update_fields)
        fields = [f for f in fields if f.name in names or f.attname in names]
    values = instance.__dict__
    return {f.attname: values[f.attname] for f in fields if f.attname in values}


def saved(instance: models.Model, values: Mapping[str, Any]) -> dict[str, Any] | None:
    """The instance's snapshot before this save, which then moves on to what the save wrote (None: not tracked)."""
    loaded: dict[str, Any] | None = instance.__dict__.get(SNAPSHOT)
    if loaded is not None:
        instance.__dict__[SNAPSHOT] = {**loaded, **{name: _keep(value) for name, value in values.items()}}
    return loaded


def _same(model: type[models.Model], attname: str, old: Any, new: Any) -> bool:
    if old is _UNKNOWN:
        return False
    if old == new:
        return True
    try:  # the same value spelled two ways: Decimal("1.50") loaded, "1.5" assigned
        to_python = model._meta.get_field(attname).to_python  # type: ignore[union-attr]  # a concrete field
        return bool(to_python(old) == to_python(new))
    except (ValidationError, TypeError, ValueError, AttributeError):
        return False


def previous_attributes(old: Any, new: Any) -> dict[str, Any]:
    """Stripe's ``previous_attributes``: each key of the payload whose value changed, with the value it had. A
    nested object gives only its changed keys; a list is given whole; a key that was absent is given as null."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return {}
    found: dict[str, Any] = {}
    for key in [*old, *(k for k in new if k not in old)]:
        was, now = old.get(key), new.get(key)
        if was == now and type(was) is type(now):
            continue
        if isinstance(was, Mapping) and isinstance(now, Mapping):
            inner = previous_attributes(was, now)
            if inner:
                found[key] = inner
        else:
            found[key] = was
    return found


@dataclass
class Written:
    """One object as the open transaction has saved it, and the messages written about it."""

    model: type[models.Model]
    created: bool  # created in this transaction: its later saves are still the one "created" event
    before: dict[str, Any]  # the field values before the transaction's first save of it
    after: dict[str, Any] = field(default_factory=dict)  # what the transaction's saves wrote
    old_payloads: dict[str, Any] = field(default_factory=dict)  # by event type: the serializer's view of `before`
    messages: dict[str, list[str]] = field(default_factory=dict)  # by event type: every message id written

    def changed(self) -> set[str]:
        """The attnames whose value differs from before the transaction's first save."""
        return {
            name
            for name, value in self.after.items()
            if not _same(self.model, name, self.before.get(name, _UNKNOWN), value)
        }

    def unknown(self) -> bool:
        """Whether this transaction wrote a field whose old value is not known (deferred, or never loaded)."""
        return any(name not in self.before for name in self.after)

    def as_before(self, instance: models.Model) -> models.Model:
        """A copy of ``instance`` with the fields this transaction wrote set back to their old values."""
        old = copy.copy(instance)
        for name in self.after:
            if name in self.before:
                setattr(old, name, self.before[name])  # an attname: a changed foreign key forgets its cached object
        return old

    def replace(self, event_type: str, send: Callable[[], Message | None]) -> None:
        """Delete what this transaction wrote about the object for ``event_type`` and ``send()`` (which returns the
        new Message, or None for no event) in one savepoint: if ``send`` raises, the earlier message stays. Ids of
        messages already gone (a rolled-back savepoint) delete nothing; all are kept, since a rolled-back savepoint
        can also bring one back."""
        ids = self.messages.setdefault(event_type, [])
        if ids:
            with transaction.atomic(using=router.db_for_write(Message)):
                Message.objects.filter(pk__in=ids).delete()
                message = send()
        else:
            message = send()
        if message is not None:
            ids.append(message.pk)


class Transaction:
    """What model events wrote in the open transaction, by (model label, pk)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, Any], Written] = {}

    def __call__(self) -> None:  # the on_commit callback: the transaction is over
        self.objects.clear()

    @classmethod
    def current(cls, *, create: bool = True) -> Transaction | None:
        """The record of the transaction open on the database that holds messages; None in autocommit (each save is
        its own transaction) and under manual transaction management. Found among the connection's pending
        ``on_commit`` callbacks (Django's own test tools read that list too): that is what makes it go away with a
        rollback, and why it cannot outlive a commit even when another callback raises."""
        connection = transaction.get_connection(router.db_for_write(Message))
        if not connection.in_atomic_block:
            return None
        for pending in connection.run_on_commit:
            if isinstance(pending[1], cls):
                return pending[1]
        if not create:
            return None
        record = cls()
        connection.on_commit(record, robust=True)
        return record
