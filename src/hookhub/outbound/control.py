"""Manual control of deliveries and endpoints: resend, recover, enable, disable, rotate a secret.

Every front door (CLI, REST API, admin, portal) calls these; none writes these fields itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.utils import timezone

from hookhub.conf import conf
from hookhub.models import Delivery, Endpoint, IdempotentResponse

Status = Delivery.Status


def resend(deliveries: Iterable[Delivery | int]) -> int:
    """Send again now, with the whole retry schedule ahead (the attempt log keeps the earlier tries).

    Deliveries being sent right now, and those of messages whose payload the retention purge emptied (there is
    nothing left to send), are left alone.
    """
    ids = [d.pk if isinstance(d, Delivery) else d for d in deliveries]
    resendable = Delivery.objects.filter(id__in=ids, message__payload_purged=False).exclude(status=Status.SENDING)
    return resendable.update(status=Status.PENDING, attempts=0, next_attempt_at=timezone.now(), finished_at=None)


def recover(endpoint: Endpoint, since: datetime) -> int:
    """Re-drive the endpoint's failed deliveries of messages created since ``since``."""
    failed = Delivery.objects.filter(endpoint=endpoint, status=Status.FAILED, message__created_at__gte=since)
    return resend(list(failed.values_list("id", flat=True)))


def enable(endpoint: Endpoint) -> None:
    """Enable; the deliveries held while it was disabled become due and are sent."""
    Endpoint.objects.filter(pk=endpoint.pk).update(
        enabled=True, disabled_reason="", disabled_at=None, failing_since=None, paused_until=None
    )
    endpoint.refresh_from_db()


def disable(endpoint: Endpoint, reason: str = "Disabled by an operator.") -> None:
    Endpoint.objects.filter(pk=endpoint.pk).update(enabled=False, disabled_reason=reason, disabled_at=timezone.now())
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
