"""Secrets encrypted at rest: Fernet (AES-128-CBC + HMAC-SHA256) keys, several at once so they rotate.

``HOOKHUB["ENCRYPTION_KEYS"]`` is a list of Fernet keys (or one comma-separated string): the first encrypts, every
one decrypts. Without it, one key is derived from ``SECRET_KEY`` with HKDF (and ``SECRET_KEY_FALLBACKS`` still
decrypt), which check ``hookhub.W003`` reports; a key that is not a Fernet key is check ``hookhub.E008``.

The model fields below encrypt in ``get_prep_value`` (so ``save``, ``bulk_update`` and ``.update()`` all store
ciphertext) and decrypt in ``from_db_value`` (so instances and ``values()`` hold plaintext). A stored value is
``hhenc1:`` followed by the Fernet token; anything else is legacy plaintext, read as it is and encrypted on its next
write (migration 0005 writes them all). Opened tokens are remembered per key ring, so a claim that loads one endpoint
with each of 500 deliveries decrypts its secret once, not 500 times.

To rotate: put the new key first, keep the old ones after it, run ``reencrypt`` (``hookhub rotate-encryption-key``),
then remove the old keys.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import DatabaseError, models, transaction

if TYPE_CHECKING:
    from django.db.models.expressions import Combinable
from django.db.models.functions import Cast
from django.dispatch import receiver

from hookhub.conf import conf

PREFIX = "hhenc1:"
_HKDF_INFO = b"hookhub encryption key v1"
_REMEMBERED = 4096


_UNOPENED = (
    "A stored secret cannot be decrypted with any key in HOOKHUB['ENCRYPTION_KEYS'] "
    "(HOOKHUB_ENCRYPTION_KEYS for the gateway). Put back the key it was encrypted with, after the new one."
)


class DecryptionError(ImproperlyConfigured):
    """A stored secret that no configured key opens: the key that encrypted it was removed, or is not this one."""


def derive_key(secret_key: str) -> bytes:
    """A Fernet key from Django's ``SECRET_KEY``, for projects that configure no key of their own."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


def configured_keys() -> list[str]:
    value = conf.ENCRYPTION_KEYS
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(k, str) for k in value):
        raise ImproperlyConfigured(
            "HOOKHUB['ENCRYPTION_KEYS'] must be a list of Fernet keys or a comma-separated string."
        )
    return [k.strip() for k in value if k.strip()]


class Keyring:
    def __init__(self, keys: Sequence[bytes | str], *, derived: bool = False) -> None:
        if not keys:
            raise ImproperlyConfigured("no encryption key")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                # Never the key itself in the message: it ends up in logs and check output.
                raise ImproperlyConfigured(
                    f"HOOKHUB['ENCRYPTION_KEYS']: key {position} is not a Fernet key (32 url-safe base64-encoded "
                    "bytes; make one with `python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`)."
                ) from None
        self.derived = derived
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)
        self._opened: dict[str, str] = {}

    def encrypt(self, plaintext: str) -> str:
        return PREFIX + self._all.encrypt(plaintext.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if (known := self._opened.get(stored)) is not None:
            return known
        try:
            plaintext = self._all.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise DecryptionError(_UNOPENED) from None
        if len(self._opened) >= _REMEMBERED:
            self._opened.clear()
        self._opened[stored] = plaintext
        return plaintext

    def encrypt_bytes(self, plaintext: bytes) -> bytes:
        return PREFIX.encode() + self._all.encrypt(plaintext)

    def decrypt_bytes(self, stored: bytes) -> bytes:
        try:
            return self._all.decrypt(stored.removeprefix(PREFIX.encode()))
        except InvalidToken:
            raise DecryptionError(_UNOPENED) from None

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is already encrypted with the first key (so a rotation can leave it alone)."""
        if not is_encrypted(stored):
            return False
        try:
            self._primary.decrypt(stored.removeprefix(PREFIX).encode())
        except InvalidToken:
            return False
        return True


class _Current:
    ring: Keyring | None = None
    lock = threading.Lock()


def keyring() -> Keyring:
    """The key ring for the current settings: built once, rebuilt when they change (``override_settings``)."""
    ring = _Current.ring
    if ring is None:
        with _Current.lock:
            keys = configured_keys()
            if keys:
                ring = Keyring(keys)
            else:
                fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", ())
                ring = Keyring([derive_key(k) for k in (settings.SECRET_KEY, *fallbacks)], derived=True)
            _Current.ring = ring
    return ring


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs: Any) -> None:
    if setting in ("HOOKHUB", "SECRET_KEY", "SECRET_KEY_FALLBACKS"):
        _Current.ring = None


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def encrypt(plaintext: str) -> str:
    return keyring().encrypt(plaintext)


def decrypt(stored: str) -> str:
    """The plaintext of a stored value; a legacy plaintext value comes back as it is."""
    return keyring().decrypt(stored) if is_encrypted(stored) else stored


def decrypt_json(stored: Any) -> Any:
    """An encrypted JSON column read in raw SQL (and parsed as JSON): its value. A legacy plaintext one as it is."""
    return json.loads(keyring().decrypt(stored)) if is_encrypted(stored) else stored


_writes = threading.local()


def _plaintext() -> bool:
    return bool(getattr(_writes, "plaintext", False))


@contextlib.contextmanager
def plaintext_writes() -> Iterator[None]:
    """Store plaintext for a while: only for migration 0005's reverse, which hands the data back to older code."""
    previous = getattr(_writes, "plaintext", False)
    _writes.plaintext = True
    try:
        yield
    finally:
        _writes.plaintext = previous


if TYPE_CHECKING:
    _TextField = models.TextField[str | Combinable, str]
    _JSONField = models.JSONField[Any, Any]
    _BinaryField = models.BinaryField[Any, Any]
else:  # the model fields are generic for the type checker only
    _TextField, _JSONField, _BinaryField = models.TextField, models.JSONField, models.BinaryField


class EncryptedTextField(_TextField):
    """Text stored encrypted. Lookups cannot match it (every encryption differs): find rows by other fields."""

    description = "Text, encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return None if value is None else decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return value if value is None or _plaintext() else encrypt(str(value))


class EncryptedJSONField(_JSONField):
    """JSON stored as one encrypted JSON string. Key and containment lookups cannot see inside it.

    With ``empty_in_clear``, an empty value (``{}``, ``[]``, ``""``) is stored as it is: it holds no secret, and a
    column that is nearly always empty (``Message.headers``) then costs no encryption on the publish path, no
    decryption on the claim path, and no rewrite on a key rotation.
    """

    description = "JSON, encrypted at rest"

    def __init__(self, *args: Any, empty_in_clear: bool = False, **kwargs: Any) -> None:
        self.empty_in_clear = empty_in_clear
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.empty_in_clear:
            kwargs["empty_in_clear"] = True
        return name, path, args, kwargs

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        value = super().from_db_value(value, expression, connection)
        if is_encrypted(value):
            return json.loads(keyring().decrypt(value), cls=self.decoder)
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None or _plaintext() or (self.empty_in_clear and value in ({}, [], "")):
            return super().get_prep_value(value)
        return encrypt(json.dumps(value, cls=self.encoder))


class EncryptedBinaryField(_BinaryField):
    """Bytes stored encrypted (``hhenc1:`` and a Fernet token, as bytes); legacy plaintext bytes read as they are."""

    description = "Bytes, encrypted at rest"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> bytes | None:
        if value is None:
            return None
        stored = bytes(value)
        return keyring().decrypt_bytes(stored) if stored.startswith(PREFIX.encode()) else stored

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is not None and not _plaintext():
            value = keyring().encrypt_bytes(bytes(value))
        return super().get_db_prep_value(value, connection, prepared)


_ENCRYPTED = EncryptedTextField | EncryptedJSONField | EncryptedBinaryField


def _encrypted_columns(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return [f for f in model._meta.concrete_fields if isinstance(f, _ENCRYPTED)]


def encrypted_fields(model: type[models.Model]) -> list[str]:
    return [f.attname for f in _encrypted_columns(model)]


def _as_stored(field: models.Field[Any, Any]) -> Cast:
    """The column as stored, with no field converter run: bytes for a binary column, text for any other."""
    output = models.BinaryField() if isinstance(field, models.BinaryField) else models.TextField()
    return Cast(field.attname, output)


def _settled(ring: Keyring, field: models.Field[Any, Any], value: Any) -> bool:
    """Whether a stored value needs no rewrite: encrypted with the first key, or an empty value kept in clear."""
    if isinstance(value, bytes | memoryview):
        value = bytes(value).decode("ascii", "replace")
    text = _stored_text(value)
    if getattr(field, "empty_in_clear", False) and text in ("{}", "[]", '""', ""):
        return True
    return ring.is_current(text)


def reencrypt(
    model_classes: Iterable[type[models.Model]], *, batch_size: int = 500, using: str = "default"
) -> dict[str, int]:
    """Rewrite every encrypted field of every row with the first key; rows already under it are left alone.

    Batches are locked while they are rewritten, so a secret rotated meanwhile is not overwritten with its old
    value. Legacy plaintext rows are encrypted by the same pass. Returns the rows rewritten per model label.
    """
    ring = keyring()
    counts: dict[str, int] = {}
    for model in model_classes:
        columns = _encrypted_columns(model)
        if not columns:
            continue
        fields = [f.attname for f in columns]
        manager = model._base_manager.db_manager(using)
        # Cast: no field converter runs, so these are the values as stored.
        stored = {f"stored_{f.attname}": _as_stored(f) for f in columns}
        rewritten, last = 0, None
        while True:
            with transaction.atomic(using=using):
                batch = manager.annotate(**stored).order_by("pk").select_for_update()
                if last is not None:
                    batch = batch.filter(pk__gt=last)
                rows = list(batch.values_list("pk", *stored)[:batch_size])
                if not rows:
                    break
                last = rows[-1][0]
                stale = [
                    pk
                    for pk, *values in rows
                    if not all(_settled(ring, f, v) for f, v in zip(columns, values, strict=True))
                ]
                if stale:
                    objects = list(manager.filter(pk__in=stale).only("pk", *fields))
                    manager.bulk_update(objects, fields)
                    rewritten += len(objects)
        counts[model._meta.label] = rewritten
    return counts


def _stored_text(value: str | None) -> str:
    """The ciphertext of a stored value: a text column holds it as is, a JSON column as a JSON string."""
    if value and value.startswith('"'):
        with contextlib.suppress(ValueError):
            decoded = json.loads(value)
            if isinstance(decoded, str):
                return decoded
    return value or ""


@dataclass(frozen=True)
class Undecryptable:
    """A stored row whose encrypted columns no configured key opens."""

    model: type[models.Model]
    pk: Any
    fields: tuple[str, ...]


def undecryptable(using: str = "default") -> list[Undecryptable]:
    """The oldest and newest row of each model with encrypted columns, where no configured key opens them.

    A wrong key fails every row; a key removed before ``reencrypt`` has run fails the oldest. Two primary-key reads
    per model, the values cast to text so that no field converter runs (and raises). A table that does not exist
    yet (before ``migrate``) is skipped.
    """
    from django.apps import apps

    ring = keyring()
    found: list[Undecryptable] = []
    for model in apps.get_models():
        fields = encrypted_fields(model)
        if not fields:
            continue
        stored = {f"stored_{name}": Cast(name, models.TextField()) for name in fields}
        rows = model._base_manager.db_manager(using).annotate(**stored)
        try:
            ends = [rows.order_by(order).values_list("pk", *stored).first() for order in ("pk", "-pk")]
        except DatabaseError:
            continue
        for row in dict.fromkeys(r for r in ends if r is not None):
            pk, *values = row
            failing = tuple(name for name, value in zip(fields, values, strict=True) if not _opens(ring, value))
            if failing:
                found.append(Undecryptable(model, pk, failing))
                break
    return found


def _opens(ring: Keyring, value: str | None) -> bool:
    text = _stored_text(value)
    if not is_encrypted(text):
        return True  # legacy plaintext: readable as it is
    try:
        ring.decrypt(text)
    except DecryptionError:
        return False
    return True
