"""Callables named in MODEL_EVENTS by the tests: what a user's project would write."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User


def user_payload(user: User) -> dict[str, Any]:
    return {"id": user.pk, "username": user.username}


def user_application(user: User) -> str | None:
    return None if user.username.startswith("internal-") else "acme"


def user_profile(user: User) -> dict[str, Any]:
    """What a customer may see of a user: never the password hash or the last login."""
    return {"id": user.pk, "username": user.username, "name": {"first": user.first_name, "last": user.last_name}}


def user_profile_refusing_boom(user: User) -> dict[str, Any]:
    """``user_profile``, except that a user named "boom" cannot be serialized (a serializer that raises)."""
    if user.first_name == "boom":
        raise ValueError("no payload for boom")
    return user_profile(user)
