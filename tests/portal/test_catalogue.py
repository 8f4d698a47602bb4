"""The portal's event catalogue: each event type with its description, version, fields, example and schema, linked
from the nav, and the same catalogue as an OpenAPI document to download."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from hookhub.models import EventType
from hookhub.portal.catalogue import Field, fields

pytestmark = [pytest.mark.urls("tests.portal.urls"), pytest.mark.django_db]

ORDER = {
    "type": "object",
    "required": ["id", "lines"],
    "properties": {
        "id": {"type": "string", "description": "The order's id."},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}},
        "coupon": {"anyOf": [{"type": "string", "maxLength": 20}, {"type": "null"}]},
        "status": {"enum": ["open", "paid"]},
    },
    "$defs": {
        "Line": {
            "type": "object",
            "required": ["sku"],
            "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1}},
        }
    },
}


def test_fields_are_read_from_the_schema() -> None:
    assert fields(ORDER) == [
        Field("id", "string", True, "The order's id.", ""),
        Field("lines", "array of object", True, "", ""),
        Field("lines[].sku", "string", True, "", ""),
        Field("lines[].quantity", "integer", False, "", "≥ 1"),
        Field("coupon", "string | null", False, "", "at most 20 characters"),
        Field("status", '"open" | "paid"', False, "", ""),
    ]
    recursive = {"$ref": "#/$defs/N", "$defs": {"N": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}}}}
    assert len(fields(recursive)) == 9  # followed to a bounded depth, not forever


def test_the_page_lists_every_event_type_and_the_nav_links_it(portal: Client, catalogue: list[EventType]) -> None:
    EventType.objects.create(
        name="order.placed", description="An order was placed.", version=3, schema=ORDER, example={"id": "o_1"}
    )
    html = portal.get(reverse("hookhub_portal:endpoints")).content.decode()
    assert f'href="{reverse("hookhub_portal:catalogue")}"' in html

    page = portal.get(reverse("hookhub_portal:catalogue"))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'aria-current="page">Event catalogue</a>' in html
    for name in ("invoice.paid", "invoice.voided", "order.placed", "user.deleted"):
        assert f'id="event-{name}"' in html
    assert html.index('id="event-order.placed"') < html.index('id="event-user.deleted"')  # deprecated ones last
    assert "An invoice was paid in full." in html
    assert "version 3" in html
    assert "<code>lines[].quantity</code>" in html
    assert "Deprecated" in html
    assert "&quot;invoice&quot;: &quot;in_1&quot;" in html  # the example, indented JSON
    assert "Any JSON: this event type has no schema." in html


def test_the_openapi_download(portal: Client, catalogue: list[EventType]) -> None:
    response = portal.get(reverse("hookhub_portal:catalogue-openapi"))
    assert response["Content-Disposition"] == 'attachment; filename="webhooks.openapi.json"'
    doc = json.loads(response.content)
    assert sorted(doc["webhooks"]) == ["invoice.paid", "invoice.voided", "user.deleted"]


def test_without_a_session_there_is_no_catalogue(client: Client, catalogue: list[EventType]) -> None:
    for name in ("catalogue", "catalogue-openapi"):
        response = client.get(reverse(f"hookhub_portal:{name}"))
        assert b"You need a portal link" in response.content
        assert b"invoice.paid" not in response.content
