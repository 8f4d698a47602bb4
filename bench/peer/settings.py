"""A minimal project with django-outbound-webhooks installed as its README says, on the gateway's SQLite tuning."""

from __future__ import annotations

import os
from pathlib import Path

from hookhub.server.database import database_from_url

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_domain_events",
    "django_outbound_webhooks",
    "bench.peer",
]
_DATA_DIR = Path(os.environ.get("HOOKHUB_DATA_DIR", "/tmp/hookhub-bench-peer"))
DATABASES = {"default": database_from_url(os.environ.get("DATABASE_URL", ""), _DATA_DIR / "db.sqlite3")}
DJANGO_OUTBOUND_WEBHOOKS = {"ALLOW_PRIVATE_ADDRESSES": True}  # the sink is on 127.0.0.1
# The payload nests a dict: its README's "nested event payloads need the decode half of the codec".
DJANGO_DOMAIN_EVENTS = {"CODEC": "django_domain_events.codecs.dacite_codec.DaciteCodec"}
