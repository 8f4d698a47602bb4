"""Field helpers shared by the resource modules."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hookhub import payloads

# Documented here, enforced by the rule (hookhub.payloads.check_channels), whose refusal names the channel at fault.
CHANNELS: dict[str, Any] = {
    "maxItems": payloads.MAX_CHANNELS,
    "items": {"type": "string", "pattern": payloads.CHANNEL_PATTERN, "maxLength": payloads.MAX_CHANNEL},
}


def optional(description: str | None = None, json_schema_extra: dict[str, Any] | None = None, **limits: Any) -> Any:
    """A PATCH field: may be left out, but not sent as ``null`` (its type says what it accepts)."""

    def schema(schema: dict[str, Any]) -> None:
        schema.pop("default", None)
        schema.update(json_schema_extra or {})

    return Field(None, description=description, json_schema_extra=schema, **limits)


def updates(body: Any) -> dict[str, Any]:
    """The fields a PATCH body actually sent."""
    return {name: getattr(body, name) for name in body.model_fields_set}
