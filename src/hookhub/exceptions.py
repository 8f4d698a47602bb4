"""Errors that cross layers: raised in one, caught in another, so they live below both.

``signing`` (used by the send side) and the inbound verifiers both raise :class:`VerificationError`; the receive
view, the inbound parser and the verifiers share :class:`InvalidPayload`. An error that only one module raises and
catches stays in that module.
"""

from __future__ import annotations


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
