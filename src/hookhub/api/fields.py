"""Field helpers shared by the resource modules."""

from __future__ import annotations

from typing import Any

from pydantic import Field


def optional(description: str | None = None, json_schema_extra: dict[str, Any] | None = None, **limits: Any) -> Any:
    """A PATCH field: may be left out, but not sent as ``null`` (its type says what it accepts)."""

    def schema(schema: dict[str, Any]) -> None:
        schema.pop("default", None)
        schema.update(json_schema_extra or {})

    return Field(None, description=description, json_schema_extra=schema, **limits)


def updates(body: Any) -> dict[str, Any]:
    """The fields a PATCH body actually sent."""
    return {name: getattr(body, name) for name in body.model_fields_set}
