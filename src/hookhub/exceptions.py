"""Errors that cross layers: raised in one, caught in another, so they live below both.

``signing`` (used by the send side) and the inbound verifiers both raise :class:`VerificationError`; the receive
view, the inbound parser and the verifiers share :class:`InvalidPayload`; the rule modules raise :class:`Refused`,
which every front door translates. An error that only one module raises and
catches stays in that module.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError


class VerificationError(Exception):
    """The request is not provably from the source's caller: answered ``status`` (403; a provider that insists on
    another, as Discord does on 401, subclasses this) with ``reason`` as the body.

    The reason must never contain a secret or an expected signature.
    """

    status = 403

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidPayload(Exception):
    """A verified request whose body does not parse: stored as ``invalid`` and answered 400."""


class Refused(ValueError):
    """A value a rule module refuses (``hookhub.outbound.rules``, ``hookhub.inbound.source_rules``): ``field`` names
    the input at fault (``event_types.2``, ``confirmer_options.api_base``), ``message`` says why, ``code`` is the
    API's error code (``validation_error``, ``invalid_url``, ``destination_refused``). Every front door translates it:
    a one-line CommandError, a 422 JSON error, a form error."""

    def __init__(self, field: str, message: str, code: str = "validation_error") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code

    def as_validation_error(self) -> ValidationError:
        return ValidationError(self.message, code=self.code)
