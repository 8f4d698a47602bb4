"""Settings of the baseline project: what hookhub's gateway has (middleware, database tuning), minus hookhub."""

from __future__ import annotations

import os
from pathlib import Path

from hookhub.server.database import database_from_url

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "bench.baselines.urls"
WSGI_APPLICATION = "bench.baselines.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "bench.baselines.seed",
]
# The gateway's middleware, so the baselines pay for the same request pipeline.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

_DATA_DIR = Path(os.environ.get("HOOKHUB_DATA_DIR", "/tmp/hookhub-bench-baseline"))
DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL", ""), _DATA_DIR / "db.sqlite3")}
# The same PRAGMAs, IMMEDIATE transactions and persistent connections as hookhub, on Django's own SQLite backend:
# hookhub's lock-file backend is hookhub's code, and the ratio measures code, not settings.
if DATABASES["default"]["ENGINE"] == "hookhub.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "django.db.backends.sqlite3"

SEED_WEBHOOK_TOKEN = os.environ.get("BENCH_SEED_TOKEN", "bench-token")
