"""A user's Django project, as small as can be, with hookhub installed as a reusable app.

The database comes from ``HOOKHUB_TEST_DATABASE_URL`` (default: SQLite with the gateway's tuning), so the same suite
runs on SQLite and on PostgreSQL.
"""

import json
import os
from pathlib import Path

from hookhub.server.database import database_from_url

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
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
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "static/"
DATABASES = {
    "default": database_from_url(
        os.environ.get("HOOKHUB_TEST_DATABASE_URL", ""),
        Path(os.environ.get("HOOKHUB_TEST_DATA_DIR", "/tmp/hookhub-tests")) / "tests.sqlite3",
    )
}
# SQLite tests use a file, as the gateway does: WAL, locking and several connections behave as in production.
# Each run gets its own test database, so two runs on one machine (or one PostgreSQL server) never collide.
_test_name = os.environ.get("HOOKHUB_TEST_DB_NAME") or (
    str(Path(DATABASES["default"]["NAME"]).with_name(f"test_hookhub_{os.getpid()}.sqlite3"))
    if DATABASES["default"]["ENGINE"].endswith("sqlite3")
    else f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
)
DATABASES["default"]["TEST"] = {"NAME": _test_name}
HOOKHUB = {
    "PUBLIC_URL": "https://hooks.example.com",
    "SOURCES": {},
    # Child processes started by tests (workers) get their settings from the test through the environment.
    **json.loads(os.environ.get("HOOKHUB_TEST_SETTINGS", "{}")),
}
# Django 6.1 sends email through MAILERS (EMAIL_BACKEND is deprecated there); older versions ignore this setting. The
# test runner makes every mailer locmem (django.core.mail.outbox) either way.
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
# User creation dominates many tests; the default hasher's deliberate slowness protects real passwords, not test ones.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# CI's PostgreSQL run sets this, so that a typo in the URL cannot turn it into a second SQLite run that quietly
# skips every test needing PostgreSQL.
if os.environ.get("HOOKHUB_TEST_REQUIRE_POSTGRESQL") and "postgresql" not in DATABASES["default"]["ENGINE"]:
    raise RuntimeError("HOOKHUB_TEST_REQUIRE_POSTGRESQL is set but HOOKHUB_TEST_DATABASE_URL is not a PostgreSQL URL")
