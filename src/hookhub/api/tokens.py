"""API tokens: ``hh_<prefix>_<secret>``. The prefix finds the row; only a SHA-256 digest of the token is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.utils import timezone

from hookhub.models import ApiToken, Application


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(*, name: str = "", application: Application | None = None) -> tuple[str, ApiToken]:
    """Make a token; returns it in clear (show it once) and its row."""
    prefix = secrets.token_hex(6)
    token = f"hh_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiToken.objects.create(name=name, prefix=prefix, digest=_digest(token), application=application)
    return token, row


def authenticate(token: str) -> ApiToken | None:
    """The live token row for ``token``, or ``None``. Compared in constant time."""
    parts = token.split("_")
    if len(parts) < 3 or parts[0] != "hh":
        return None
    row = ApiToken.objects.select_related("application").filter(prefix=parts[1], revoked=False).first()
    if row is None or not hmac.compare_digest(row.digest, _digest(token)):
        return None
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)  # at most once a minute: no write per request
    return row
