"""Manual control of deliveries and endpoints: resend (one by one, or the failed ones by filter), recover, enable,
disable, rotate a secret. Replaying what an endpoint missed is ``replay.replay_missing``.

Every front door (CLI, REST API, admin, portal) calls these; none writes these fields itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from hookhub.conf import conf
from hookhub.models import Application, Delivery, Endpoint, IdempotentResponse

logger = logging.getLogger("hookhub.outbound")
Status = Delivery.Status
#: Deliveries re-queued per transaction by ``resend_failed``.
BATCH = 500


def _requeue(deliveries: QuerySet[Delivery]) -> int:
    return deliveries.update(status=Status.PENDING, attempts=0, next_attempt_at=timezone.now(), finished_at=None)


def resend(deliveries: Iterable[Delivery | int]) -> int:
    """Send again now, with the whole retry schedule ahead (the attempt log keeps the earlier tries).

    Deliveries being sent right now, and those of messages whose payload the retention purge emptied (there is
    nothing left to send), are left alone.
    """
    ids = [d.pk if isinstance(d, Delivery) else d for d in deliveries]
    return _requeue(Delivery.objects.filter(id__in=ids, message__payload_purged=False).exclude(status=Status.SENDING))


@dataclass
class Resent:
    """What ``resend_failed`` did, or (``dry_run``) would do."""

    count: int = 0  # failed deliveries made due again (would be, in a dry run)
    skipped: int = 0  # failed deliveries whose message payload the retention purge emptied: nothing to send
    errors: int = 0  # could not be re-queued (each logged); the others were
    dry_run: bool = False


def resend_failed(
    application: Application,
    *,
    since: datetime,
    until: datetime | None = None,
    endpoint: Endpoint | None = None,
    event_type: str | None = None,
    dry_run: bool = False,
) -> Resent:
    """Resend the application's failed deliveries of messages created in [since, until), only those to ``endpoint``
    and of ``event_type`` when given, in batches of ``BATCH`` (one transaction each, memory bounded); a batch that
    fails is retried one delivery at a time, so one row's error costs only that row. ``recover`` is this for one
    endpoint."""
    from .replay import check_window

    check_window(since, until)
    failed = Delivery.objects.filter(
        status=Status.FAILED, message__application=application, message__created_at__gte=since
    )
    if until is not None:
        failed = failed.filter(message__created_at__lt=until)
    if endpoint is not None:
        failed = failed.filter(endpoint=endpoint)
    if event_type is not None:
        failed = failed.filter(message__event_type=event_type)
    outcome = Resent(dry_run=dry_run)
    after = 0
    while rows := list(failed.filter(id__gt=after).order_by("id").values_list("id", "message__payload_purged")[:BATCH]):
        after = rows[-1][0]
        ids = [pk for pk, purged in rows if not purged]
        outcome.skipped += len(rows) - len(ids)
        if dry_run:
            outcome.count += len(ids)
        elif ids:
            _resend_batch(ids, outcome)
    return outcome


def _resend_batch(ids: list[int], outcome: Resent) -> None:
    still_failed = Delivery.objects.filter(status=Status.FAILED)
    try:
        with transaction.atomic():
            outcome.count += _requeue(still_failed.filter(id__in=ids))
    except Exception:  # noqa: BLE001 - one at a time below
        for pk in ids:
            try:
                with transaction.atomic():
                    outcome.count += _requeue(still_failed.filter(id=pk))
            except Exception:
                logger.exception("hookhub: could not resend delivery %s", pk)
                outcome.errors += 1


def recover(endpoint: Endpoint, since: datetime) -> int:
    """Re-drive the endpoint's failed deliveries of messages created since ``since``."""
    return resend_failed(endpoint.application, endpoint=endpoint, since=since).count


def enable(endpoint: Endpoint) -> None:
    """Enable; the deliveries held while it was disabled become due and are sent. It moves ``updated_at`` (the
    endpoint's version): a worker reads the endpoint afresh rather than use what it kept of it (``jobs._targets``)."""
    Endpoint.objects.filter(pk=endpoint.pk).update(
        enabled=True,
        disabled_reason="",
        disabled_at=None,
        failing_since=None,
        paused_until=None,
        updated_at=timezone.now(),
    )
    endpoint.refresh_from_db()


def disable(endpoint: Endpoint, reason: str = "Disabled by an operator.") -> None:
    now = timezone.now()
    Endpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_reason=reason, disabled_at=now, updated_at=now
    )
    endpoint.refresh_from_db()


def rotate_secret(endpoint: Endpoint, new_secret: str | None = None) -> str:
    """Start signing with a new secret; the old one keeps signing too for ``SECRET_ROTATION_OVERLAP`` seconds."""
    from hookhub.signing import generate_ed25519_keypair, generate_secret

    now = timezone.now()
    if new_secret is None:
        new_secret = generate_ed25519_keypair()[0] if endpoint.scheme == Endpoint.Scheme.ED25519 else generate_secret()
    expires = (now + timedelta(seconds=conf.SECRET_ROTATION_OVERLAP)).isoformat()
    kept = [p for p in endpoint.previous_secrets or [] if datetime.fromisoformat(p["expires_at"]) > now]
    endpoint.previous_secrets = [{"secret": endpoint.secret, "expires_at": expires}, *kept]
    endpoint.secret = new_secret
    endpoint.save(update_fields=["secret", "previous_secrets", "updated_at"])
    IdempotentResponse.objects.filter(endpoint=endpoint).delete()  # a stored create response shows the old secret
    return new_secret
