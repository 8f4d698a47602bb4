"""ASGI entry point, for servers that only speak ASGI. ``hookhub serve`` uses WSGI: see docs/gateway.md for why."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookhub.server.settings")
application = get_asgi_application()
