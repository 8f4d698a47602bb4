"""Every hookhub setting, read lazily from the one ``HOOKHUB`` dict in Django settings.

Each property reads ``settings.HOOKHUB`` at access time, so ``override_settings`` works in tests and nothing is
cached at import. Misconfigurations are reported by system checks (``hookhub.checks``), not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

#: What ``PURGE_SECURE_DELETE`` may be, besides None.
SECURE_DELETE_VALUES = ("on", "fast", "off")

DEFAULTS: dict[str, Any] = {
    # Receive side
    "SOURCES": {},
    "PUBLIC_URL": "",
    "MAX_BODY_SIZE": 5 * 1024 * 1024,
    "RETENTION_DAYS": 30,
    "TRUSTED_PROXY_COUNT": 0,
    "RATE_LIMIT_BACKEND": "local",
    "SOURCE_CACHE_SECONDS": 5.0,
    "GROUP_COMMIT": True,
    "MAX_RECEIVING": 32,
    "INBOUND_RETRY_SCHEDULE": [10, 60, 300, 1800, 7200, 21600],
    "CONFIRMER_TIMEOUT": 10.0,
    "CONFIRMER_ENV_ALLOWLIST": [],
    "STRIPE_API_BASE": "https://api.stripe.com",
    "REPLY_DEADLINE": 2.5,
    "REPLY_FUNCTIONS": [],
    "AWS_SNS_CERTIFICATE_ORIGIN": r"https://sns\.[a-z0-9-]{3,}\.amazonaws\.com(\.cn)?",
    "GOOGLE_OIDC_JWKS_URL": "https://www.googleapis.com/oauth2/v3/certs",
    # Send side
    "RETRY_SCHEDULE": [5, 300, 1800, 7200, 18000, 36000, 36000],
    "RETRY_AFTER_MAX": 6 * 3600,
    "DELIVERY_TIMEOUT": 15.0,
    "CONNECT_TIMEOUT": 5.0,
    "RESPONSE_BODY_LIMIT": 4096,
    "ALLOW_PRIVATE_DESTINATIONS": False,
    "ALLOWED_DESTINATION_NETWORKS": [],
    "SECRET_ROTATION_OVERLAP": 24 * 3600,
    "DISABLE_AFTER": 5 * 24 * 3600,
    "MAX_IN_FLIGHT": 256,
    "MAX_IN_FLIGHT_PER_ENDPOINT": 16,
    "MAX_IN_FLIGHT_PER_APPLICATION": 64,
    "MAX_ENDPOINTS_PER_APPLICATION": 50,
    "DELIVERY_BATCH_SIZE": 500,
    "THROTTLE_SECONDS": 5.0,
    "PAYLOAD_RETENTION_DAYS": 90,
    "ATTEMPT_RETENTION_DAYS": 30,
    "OPERATIONAL_APPLICATION": None,
    "MODEL_EVENTS": {},
    # Alerts to people, by email (hookhub.alerts)
    "ALERTS": True,
    "ALERT_AFTER": 3600,
    "ALERT_INTERVAL": 24 * 3600,
    "ALERT_EMAILS": None,  # None: the addresses in Django's ADMINS
    "ALERT_FROM": None,  # None: Django's DEFAULT_FROM_EMAIL
    "EVENT_TYPES": {},
    # REST API: the largest request body in bytes (None: Django's DATA_UPLOAD_MAX_MEMORY_SIZE)
    "API_MAX_BODY_BYTES": None,
    # Customer portal
    "PORTAL_RATE_LIMIT": "10/m",
    # Worker
    "LEASE_SECONDS": 120,
    "WORKER_BATCH_SIZE": 50,
    "WORKER_POLL_INTERVAL": 1.0,
    "WAKE": True,
    "PURGE_INTERVAL": 3600,
    "PURGE_BATCH_SIZE": 2000,
    "PURGE_SECURE_DELETE": None,
    # Secrets at rest (hookhub.crypto)
    "ENCRYPTION_KEYS": [],
    # The gateway's /metrics page
    "METRICS_WORKER_HOSTS": False,
    "METRICS_CACHE_SECONDS": 10.0,
    "METRICS_APPLICATIONS": 20,
}


class Settings:
    def _get(self, name: str) -> Any:
        configured: Mapping[str, Any] = getattr(settings, "HOOKHUB", {}) or {}
        return configured.get(name, DEFAULTS[name])

    @property
    def SOURCES(self) -> Mapping[str, Mapping[str, Any]]:
        return self._get("SOURCES")  # type: ignore[no-any-return]

    @property
    def PUBLIC_URL(self) -> str:
        return str(self._get("PUBLIC_URL")).rstrip("/")

    @property
    def MAX_BODY_SIZE(self) -> int:
        return int(self._get("MAX_BODY_SIZE"))

    @property
    def RETENTION_DAYS(self) -> int:
        return int(self._get("RETENTION_DAYS"))

    @property
    def GROUP_COMMIT(self) -> bool:
        return bool(self._get("GROUP_COMMIT"))

    @property
    def MAX_RECEIVING(self) -> int:
        """Requests one web process verifies and stores at once; past it, 503 + Retry-After (0: no bound)."""
        return int(self._get("MAX_RECEIVING"))

    @property
    def TRUSTED_PROXY_COUNT(self) -> int:
        return int(self._get("TRUSTED_PROXY_COUNT"))

    @property
    def RATE_LIMIT_BACKEND(self) -> str:
        return str(self._get("RATE_LIMIT_BACKEND"))

    @property
    def SOURCE_CACHE_SECONDS(self) -> float:
        return float(self._get("SOURCE_CACHE_SECONDS"))

    @property
    def INBOUND_RETRY_SCHEDULE(self) -> Sequence[float]:
        return [float(s) for s in self._get("INBOUND_RETRY_SCHEDULE")]

    @property
    def CONFIRMER_TIMEOUT(self) -> float:
        return float(self._get("CONFIRMER_TIMEOUT"))

    @property
    def CONFIRMER_ENV_ALLOWLIST(self) -> frozenset[str]:
        """Environment variables that a source stored in the database (API, admin, CLI) may name in a confirmer's
        ``*_env`` option. Sources declared in ``SOURCES`` may name any; the rest none unless listed here."""
        value = self._get("CONFIRMER_ENV_ALLOWLIST")
        if not isinstance(value, list | tuple | set | frozenset):
            return frozenset()  # malformed: hookhub.E013 says so; meanwhile, allow nothing
        return frozenset(v for v in value if isinstance(v, str) and v)

    @property
    def STRIPE_API_BASE(self) -> str:
        return str(self._get("STRIPE_API_BASE")).rstrip("/")

    @property
    def REPLY_DEADLINE(self) -> float:
        """Seconds from a request reaching the receive view until a source's reply function must have answered
        (just under Discord's 3). One that is not a number above 0 is the default (``hookhub.E020`` names it)."""
        value = self._get("REPLY_DEADLINE")
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
        return float(DEFAULTS["REPLY_DEADLINE"])

    @property
    def REPLY_FUNCTIONS(self) -> frozenset[str]:
        """Dotted paths of the reply functions that a source's ``reply`` may name through the API (settings, the
        admin and the CLI may name any function)."""
        value = self._get("REPLY_FUNCTIONS")
        if not isinstance(value, list | tuple | set | frozenset):
            return frozenset()  # malformed: hookhub.E022 says so; meanwhile, allow nothing
        return frozenset(v for v in value if isinstance(v, str) and v)

    @property
    def AWS_SNS_CERTIFICATE_ORIGIN(self) -> str:
        """A regular expression that the origin (``scheme://host[:port]``) of an SNS message's ``SigningCertURL`` and
        ``SubscribeURL`` must match in full; the default is AWS's own hosts, over https (``hookhub.E026``)."""
        return str(self._get("AWS_SNS_CERTIFICATE_ORIGIN"))

    @property
    def GOOGLE_OIDC_JWKS_URL(self) -> str:
        """Where Google publishes the keys that sign its OIDC tokens (``google-pubsub``; ``hookhub.E027``)."""
        return str(self._get("GOOGLE_OIDC_JWKS_URL"))

    @property
    def RETRY_SCHEDULE(self) -> Sequence[float]:
        return [float(s) for s in self._get("RETRY_SCHEDULE")]

    @property
    def RETRY_AFTER_MAX(self) -> float:
        return float(self._get("RETRY_AFTER_MAX"))

    @property
    def DELIVERY_TIMEOUT(self) -> float:
        return float(self._get("DELIVERY_TIMEOUT"))

    @property
    def CONNECT_TIMEOUT(self) -> float:
        return float(self._get("CONNECT_TIMEOUT"))

    @property
    def RESPONSE_BODY_LIMIT(self) -> int:
        return int(self._get("RESPONSE_BODY_LIMIT"))

    @property
    def ALLOW_PRIVATE_DESTINATIONS(self) -> bool:
        return bool(self._get("ALLOW_PRIVATE_DESTINATIONS"))

    @property
    def ALLOWED_DESTINATION_NETWORKS(self) -> tuple[str, ...]:
        """Networks deliveries may reach although the SSRF guard refuses them (``"10.0.0.0/8"``, ``"fd00::/8"``):
        a list, or a comma-separated string. ``hookhub.outbound.ssrf`` parses them; a check (hookhub.E012) names
        any that does not parse."""
        value = self._get("ALLOWED_DESTINATION_NETWORKS") or ()
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list | tuple):
            return ()  # allows nothing; hookhub.E012 names it
        return tuple(str(item).strip() for item in value if str(item).strip())

    @property
    def SECRET_ROTATION_OVERLAP(self) -> float:
        return float(self._get("SECRET_ROTATION_OVERLAP"))

    @property
    def DISABLE_AFTER(self) -> float:
        return float(self._get("DISABLE_AFTER"))

    @property
    def MAX_IN_FLIGHT(self) -> int:
        return int(self._get("MAX_IN_FLIGHT"))

    @property
    def MAX_IN_FLIGHT_PER_ENDPOINT(self) -> int:
        return int(self._get("MAX_IN_FLIGHT_PER_ENDPOINT"))

    @property
    def MAX_IN_FLIGHT_PER_APPLICATION(self) -> int:
        """How many of one application's deliveries one worker may have in flight at once (over all its
        endpoints), so one customer's many slow endpoints cannot take every slot of a worker."""
        return int(self._get("MAX_IN_FLIGHT_PER_APPLICATION"))

    @property
    def MAX_ENDPOINTS_PER_APPLICATION(self) -> int:
        """How many endpoints (enabled or not) one application may have; the API, portal, admin and CLI refuse more."""
        return int(self._get("MAX_ENDPOINTS_PER_APPLICATION"))

    @property
    def DELIVERY_BATCH_SIZE(self) -> int:
        return int(self._get("DELIVERY_BATCH_SIZE"))

    @property
    def THROTTLE_SECONDS(self) -> float:
        return float(self._get("THROTTLE_SECONDS"))

    @property
    def PAYLOAD_RETENTION_DAYS(self) -> int:
        return int(self._get("PAYLOAD_RETENTION_DAYS"))

    @property
    def ATTEMPT_RETENTION_DAYS(self) -> int:
        """Days a finished delivery's attempts (requests, responses, errors) are kept."""
        return int(self._get("ATTEMPT_RETENTION_DAYS"))

    @property
    def OPERATIONAL_APPLICATION(self) -> str | None:
        value = self._get("OPERATIONAL_APPLICATION")
        return str(value) if value else None

    @property
    def MODEL_EVENTS(self) -> Mapping[str, Mapping[str, Any]]:
        return self._get("MODEL_EVENTS")  # type: ignore[no-any-return]

    @property
    def ALERTS(self) -> bool:
        """Whether workers email people about disabled and failing endpoints (``hookhub.alerts``)."""
        return bool(self._get("ALERTS"))

    @property
    def ALERT_AFTER(self) -> float:
        """Seconds an endpoint fails continuously (``failing_since``) before people are told."""
        return _seconds(self._get("ALERT_AFTER"), DEFAULTS["ALERT_AFTER"])

    @property
    def ALERT_INTERVAL(self) -> float:
        """At most one alert per endpoint in this many seconds."""
        return _seconds(self._get("ALERT_INTERVAL"), DEFAULTS["ALERT_INTERVAL"])

    @property
    def ALERT_EMAILS(self) -> tuple[str, ...]:
        """The operator's addresses, told of every alert: a list or a comma-separated string; None (the default)
        takes those in Django's ``ADMINS`` (plain addresses or ``(name, address)`` pairs). What is not a string is
        left out (``hookhub.E024`` names it)."""
        entries = self.alert_email_entries() or []
        return tuple(dict.fromkeys(a.strip() for a in entries if isinstance(a, str) and a.strip()))

    def alert_email_entries(self) -> list[Any] | None:
        """``ALERT_EMAILS`` (or ``ADMINS``) as a list of entries, unchecked; None when it is not a list at all."""
        value = self._get("ALERT_EMAILS")
        if value is None:
            value = [a[1] if isinstance(a, list | tuple) and len(a) == 2 else a for a in settings.ADMINS or ()]
        if isinstance(value, str):
            value = value.split(",")
        return list(value) if isinstance(value, list | tuple) else None

    @property
    def ALERT_FROM(self) -> str:
        """The alerts' sender: an address, or ``Name <address>``; None (the default) takes ``DEFAULT_FROM_EMAIL``."""
        value = self._get("ALERT_FROM")
        return str(value) if value else str(settings.DEFAULT_FROM_EMAIL)

    @property
    def EVENT_TYPES(self) -> Mapping[str, Mapping[str, Any]]:
        return self._get("EVENT_TYPES")  # type: ignore[no-any-return]

    @property
    def API_MAX_BODY_BYTES(self) -> int | None:
        value = self._get("API_MAX_BODY_BYTES")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    @property
    def PORTAL_RATE_LIMIT(self) -> str:
        """How many test events, and how many new endpoints, one application may make in the portal: a rate as
        ``"10/m"`` (each action counted on its own), ``""`` for no limit."""
        value = self._get("PORTAL_RATE_LIMIT")
        return str(value).strip() if value else ""

    @property
    def LEASE_SECONDS(self) -> float:
        return float(self._get("LEASE_SECONDS"))

    @property
    def WORKER_BATCH_SIZE(self) -> int:
        return int(self._get("WORKER_BATCH_SIZE"))

    @property
    def WORKER_POLL_INTERVAL(self) -> float:
        return float(self._get("WORKER_POLL_INTERVAL"))

    @property
    def WAKE(self) -> bool:
        """Whether ``send()`` wakes idle workers (``hookhub.wake``); off, they find new work at their next poll."""
        return self._get("WAKE") is True

    @property
    def PURGE_SECURE_DELETE(self) -> str | None:
        """On SQLite, the ``secure_delete`` a purge runs with: ``"on"`` (deleted content is zeroed, and freed pages
        with it), ``"fast"`` (zeroed on the pages the purge writes anyway; freed pages keep theirs), ``"off"``, or
        None: the SQLite build's own (Python's usually has it on). ``hookhub.E029`` names any other value."""
        value = self._get("PURGE_SECURE_DELETE")
        return value if value in SECURE_DELETE_VALUES else None

    @property
    def PURGE_INTERVAL(self) -> float:
        return float(self._get("PURGE_INTERVAL"))

    @property
    def PURGE_BATCH_SIZE(self) -> int:
        return int(self._get("PURGE_BATCH_SIZE"))

    @property
    def ENCRYPTION_KEYS(self) -> Any:
        """Fernet keys, first one encrypting: a list or a comma-separated string (``hookhub.crypto`` parses it)."""
        return self._get("ENCRYPTION_KEYS")

    @property
    def METRICS_WORKER_HOSTS(self) -> bool:
        """Label /metrics series with workers' ids (host name, process id) rather than an opaque hash of them."""
        return bool(self._get("METRICS_WORKER_HOSTS"))

    @property
    def METRICS_CACHE_SECONDS(self) -> float:
        """How long a web process serves the same /metrics page before reading the database again."""
        return float(self._get("METRICS_CACHE_SECONDS"))

    @property
    def METRICS_APPLICATIONS(self) -> int:
        """How many applications (the busiest) get their own series on /metrics; the rest are summed up."""
        return int(self._get("METRICS_APPLICATIONS"))


def _seconds(value: Any, default: float) -> float:
    """A duration setting in seconds; one that is not a number ≥ 0 is the default (its check, ``hookhub.E023``,
    names it)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return float(default)


conf = Settings()
