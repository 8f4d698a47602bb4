"""Settings of the standalone gateway (``hookhub serve``), read from the environment (12-factor).

``DATABASE_URL`` (default: SQLite in ``HOOKHUB_DATA_DIR``, default ``./.hookhub/``), ``HOOKHUB_SECRET_KEY``
(generated and kept in the data dir when absent), ``HOOKHUB_ENCRYPTION_KEYS`` (comma-separated Fernet keys, the first
encrypting; generated and kept in the data dir when absent), ``HOOKHUB_ALLOWED_HOSTS`` (comma-separated),
``HOOKHUB_DEBUG`` (off by default), ``HOOKHUB_PUBLIC_URL``, ``HOOKHUB_SOURCES_FILE`` (a JSON file of sources),
``HOOKHUB_MAX_RECEIVING`` (requests each web process receives at once; past it, 503), ``HOOKHUB_API_MAX_BODY_BYTES``
(the REST API's largest body; past it, 413),
``HOOKHUB_CONFIRMER_ENV_ALLOWLIST`` (comma-separated environment variables that sources made through the API, admin
or CLI may name in a confirmer's ``*_env`` option).

Alerts by email (``hookhub.alerts``): ``HOOKHUB_EMAIL_HOST`` (without it, alerts are written to the worker's output),
``HOOKHUB_EMAIL_PORT``, ``HOOKHUB_EMAIL_USER``, ``HOOKHUB_EMAIL_PASSWORD``, ``HOOKHUB_EMAIL_TLS`` (``starttls`` or
``ssl``), ``HOOKHUB_EMAIL_FROM``, ``HOOKHUB_ALERT_EMAILS`` (the operator's addresses, comma-separated) and
``HOOKHUB_ALERTS`` (``0`` turns alerts off).

``HOOKHUB_HTTPS=1``, or a ``HOOKHUB_PUBLIC_URL`` that starts with ``https://``: the gateway is served over HTTPS by a
proxy that sets ``X-Forwarded-Proto``; cookies are Secure, HSTS is sent (``HOOKHUB_HSTS_SECONDS``, default a year) and
plain-HTTP requests are redirected, except /healthz and /metrics (probes reach the gateway directly).
``HOOKHUB_DEMO=1`` (set by ``serve --demo``) mounts the demo receiver. ``HOOKHUB_METRICS_WORKER_HOSTS=1`` shows
workers' host names and process ids on /metrics.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from typing import Any

import django
from cryptography.fernet import Fernet

from hookhub.server import datadir, public_url
from hookhub.server.database import database_from_url


def _flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, "1" if default else "0").strip().lower() in ("1", "true", "yes", "on")


DATA_DIR = datadir.path()


def _kept(name: str, make: Callable[[], str]) -> str:
    """A key read from the data dir, made there (readable by its owner only) on first start. Where the data dir may
    not be created (``hookhub --help`` in any folder), a throwaway key that nothing is encrypted with."""
    path = DATA_DIR / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        if not datadir.may_create():
            return make()
        DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = make()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process of this gateway made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key


def _secret_key() -> str:
    return os.environ.get("HOOKHUB_SECRET_KEY") or _kept("secret_key", lambda: secrets.token_urlsafe(50))


def _encryption_keys() -> list[str]:
    if keys := os.environ.get("HOOKHUB_ENCRYPTION_KEYS", "").strip():
        return [k.strip() for k in keys.split(",") if k.strip()]
    return [_kept("encryption_key", lambda: Fernet.generate_key().decode())]


SECRET_KEY = _secret_key()
DEBUG = _flag("HOOKHUB_DEBUG")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("HOOKHUB_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # serves the API docs' assets itself
    "hookhub",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "hookhub.server.middleware.content_security_policy",
    "hookhub.server.middleware.UndecryptableSecrets",
]

ROOT_URLCONF = "hookhub.server.urls"
WSGI_APPLICATION = "hookhub.server.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL", ""), DATA_DIR / "hookhub.sqlite3", create=datadir.may_create()
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
USE_TZ = True
TIME_ZONE = "UTC"

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# HOOKHUB_PUBLIC_URL, else the address the last `hookhub serve` of this data dir listened on (hookhub.server.public_url)
PUBLIC_URL = public_url.resolve(os.environ, DATA_DIR)
HTTPS = _flag("HOOKHUB_HTTPS") or PUBLIC_URL.lower().startswith("https://")
if HTTPS:
    # Only behind a proxy that sets X-Forwarded-Proto itself (and drops the client's): see docs/gateway.md.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    # Health checks and scrapers talk to the gateway directly, without the proxy's header.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("HOOKHUB_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0

# The lean receive path (hookhub.server.lean): /hooks/ without the middleware stack; 0 serves it through Django.
LEAN_RECEIVE = _flag("HOOKHUB_LEAN_RECEIVE", default=True)
DEMO = _flag("HOOKHUB_DEMO")  # the demo receiver's URLs, for `serve --demo`

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "hookhub": {"handlers": ["console"], "level": os.environ.get("HOOKHUB_LOG_LEVEL", "INFO")},
        # Every 500 with its traceback: Django sends it to django.request, whose own handlers only print with DEBUG
        # on (and mail ADMINS, which a gateway does not have). 4xx are warnings, not logged here.
        "django.request": {"handlers": ["console"], "level": "ERROR"},
    },
}


def _sources() -> dict[str, Any]:
    path = os.environ.get("HOOKHUB_SOURCES_FILE")
    if not path:
        return {}
    with open(path) as f:
        return dict(json.load(f))


HOOKHUB: dict[str, Any] = {
    "PUBLIC_URL": PUBLIC_URL,
    "SOURCES": _sources(),
    "ALLOW_PRIVATE_DESTINATIONS": _flag("HOOKHUB_ALLOW_PRIVATE_DESTINATIONS"),
    # Comma-separated, e.g. "10.0.0.0/8,fd00::/8"; parsed (and checked: hookhub.E012) by hookhub.
    "ALLOWED_DESTINATION_NETWORKS": os.environ.get("HOOKHUB_ALLOWED_DESTINATION_NETWORKS", ""),
    "OPERATIONAL_APPLICATION": os.environ.get("HOOKHUB_OPERATIONAL_APPLICATION") or None,
    "GROUP_COMMIT": _flag("HOOKHUB_GROUP_COMMIT", default=True),
    "ENCRYPTION_KEYS": _encryption_keys(),
    "METRICS_WORKER_HOSTS": _flag("HOOKHUB_METRICS_WORKER_HOSTS"),
}
if api_body := os.environ.get("HOOKHUB_API_MAX_BODY_BYTES", "").strip():
    # The API's body limit; Django's own (read by every form) is set with it so the API's applies. Not a number stays
    # as given, for the hookhub.E019 check to name it.
    HOOKHUB["API_MAX_BODY_BYTES"] = int(api_body) if api_body.isdigit() else api_body
    if api_body.isdigit():
        DATA_UPLOAD_MAX_MEMORY_SIZE = int(api_body)
if max_receiving := os.environ.get("HOOKHUB_MAX_RECEIVING", "").strip():
    # Not a number stays as given, for the hookhub.E009 check to name it.
    HOOKHUB["MAX_RECEIVING"] = int(max_receiving) if max_receiving.isdigit() else max_receiving

# Email: the SMTP server alerts go through (hookhub.alerts). Without a host they are written to the worker's output.
_mail_options: dict[str, Any] = {}
if email_host := os.environ.get("HOOKHUB_EMAIL_HOST", "").strip():
    _mail_backend = "django.core.mail.backends.smtp.EmailBackend"
    _tls = os.environ.get("HOOKHUB_EMAIL_TLS", "").strip().lower()
    _ssl, _starttls = _tls == "ssl", _tls not in ("", "0", "off", "no", "false", "ssl")
    _port = os.environ.get("HOOKHUB_EMAIL_PORT", "").strip()
    _mail_options = {
        "host": email_host,
        # Not a number stays as given: the alerts' log then says the mail server cannot be reached, and why.
        "port": int(_port) if _port.isdigit() else _port or (465 if _ssl else 587 if _starttls else 25),
        "username": os.environ.get("HOOKHUB_EMAIL_USER", ""),
        "password": os.environ.get("HOOKHUB_EMAIL_PASSWORD", ""),
        "use_tls": _starttls,
        "use_ssl": _ssl,
        "timeout": 10,
    }
else:
    _mail_backend = "django.core.mail.backends.console.EmailBackend"
    # Deliberate, not a development leftover: without a mail server, alerts go to the worker's log. Django 6.1's
    # deploy check (mail.E001) would call the console backend an error and fail `check --deploy`.
    SILENCED_SYSTEM_CHECKS = ["mail.E001"]
if django.VERSION >= (6, 1):  # MAILERS replaces the EMAIL_* settings
    MAILERS = {"default": {"BACKEND": _mail_backend, "OPTIONS": _mail_options}}
else:
    EMAIL_BACKEND = _mail_backend
    if _mail_options:
        EMAIL_HOST, EMAIL_PORT = _mail_options["host"], _mail_options["port"]
        EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _mail_options["username"], _mail_options["password"]
        EMAIL_USE_TLS, EMAIL_USE_SSL, EMAIL_TIMEOUT = _mail_options["use_tls"], _mail_options["use_ssl"], 10
if email_from := os.environ.get("HOOKHUB_EMAIL_FROM", "").strip():
    DEFAULT_FROM_EMAIL = SERVER_EMAIL = email_from
HOOKHUB["ALERTS"] = _flag("HOOKHUB_ALERTS", default=True)
if alert_emails := os.environ.get("HOOKHUB_ALERT_EMAILS", "").strip():
    HOOKHUB["ALERT_EMAILS"] = alert_emails  # comma-separated; checked by hookhub.E024
if purge_secure_delete := os.environ.get("HOOKHUB_PURGE_SECURE_DELETE", "").strip():
    HOOKHUB["PURGE_SECURE_DELETE"] = purge_secure_delete.lower()  # checked by hookhub.E029
if reply_deadline := os.environ.get("HOOKHUB_REPLY_DEADLINE", "").strip():
    # Not a number stays as given, for the hookhub.E020 check to name it.
    try:
        HOOKHUB["REPLY_DEADLINE"] = float(reply_deadline)
    except ValueError:
        HOOKHUB["REPLY_DEADLINE"] = reply_deadline
if reply_functions := os.environ.get("HOOKHUB_REPLY_FUNCTIONS", "").strip():
    HOOKHUB["REPLY_FUNCTIONS"] = [path.strip() for path in reply_functions.split(",") if path.strip()]  # E022
if confirmer_env := os.environ.get("HOOKHUB_CONFIRMER_ENV_ALLOWLIST", "").strip():
    HOOKHUB["CONFIRMER_ENV_ALLOWLIST"] = [name.strip() for name in confirmer_env.split(",") if name.strip()]
