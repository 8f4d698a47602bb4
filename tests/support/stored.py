"""What the database and a cookie really hold (no field converter), to prove a credential is stored encrypted."""

from __future__ import annotations

from django.contrib.messages.storage.cookie import CookieStorage
from django.db import connection
from django.http import HttpRequest
from django.test import Client

CREDENTIAL = "Bearer message-credential-0123456789"


def raw(sql: str) -> list[str]:
    """Column values as the database holds them (no field converter), as text."""
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [bytes(v).decode() if isinstance(v, bytes | memoryview) else str(v) for (v,) in cursor.fetchall()]


def stored_bodies() -> list[str]:
    return raw("SELECT body FROM hookhub_idempotentresponse")


def stored_headers() -> list[str]:
    return raw("SELECT CAST(headers AS TEXT) FROM hookhub_message")


def cookie_messages(client: Client) -> list[str]:
    """The messages the client's cookie carries, decoded as Django reads them."""
    cookie = client.cookies.get(CookieStorage.cookie_name)
    if cookie is None or not cookie.value:
        return []
    request = HttpRequest()
    request.COOKIES[CookieStorage.cookie_name] = cookie.value
    return [str(m) for m in CookieStorage(request)]
