"""What the database and a cookie really hold (no field converter), to prove a credential is stored encrypted."""

from __future__ import annotations

import json

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


#: (table, columns) of every stored secret.
SECRET_COLUMNS = {
    "hookhub_source": ("secrets", "options", "confirmer_options"),
    "hookhub_endpoint": ("secret", "previous_secrets", "headers"),
}


def raw_rows() -> list[str]:
    """Every secret column of every row, as the database holds it (no field converter runs on a raw query)."""
    values = []
    with connection.cursor() as cursor:
        for table, columns in SECRET_COLUMNS.items():
            selected = ", ".join(f"CAST({c} AS TEXT)" for c in columns)
            cursor.execute(f"SELECT {selected} FROM {table}")  # noqa: S608 - constant names
            values += [str(v) for row in cursor.fetchall() for v in row]
    return values


def stored_token(value: str) -> str:
    """A raw column value as text: JSON columns hold the token as a JSON string."""
    return str(json.loads(value)) if value.startswith('"') else value
