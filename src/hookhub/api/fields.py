"""Field helpers shared by the resource modules."""

from __future__ import annotations

from typing import Any

from pydantic import Field

# Public identifiers that appear in URL paths: no slash, no spaces, nothing that needs escaping to be readable.
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]*$"


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def optional(description: str | None = None, **constraints: Any) -> Any:
    """A PATCH field: may be left out, but not sent as ``null`` (its type says what it accepts)."""
    return Field(None, description=description, json_schema_extra=_no_default, **constraints)


def updates(body: Any) -> dict[str, Any]:
    """The fields a PATCH body actually sent."""
    return {name: getattr(body, name) for name in body.model_fields_set}
