"""The portal's event catalogue in a real browser (Chromium, driven by Playwright): a customer opens it from the nav,
reads an event type's fields, example and schema, and downloads the OpenAPI document. With HOOKHUB_SCREENSHOTS=1
the page's screenshot goes to docs/images/ (as in test_browser.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from hookhub.models import Application, EventType
from tests.support.browser import browser
from tests.support.portal import login_path

from .test_catalogue import ORDER

__all__ = ["browser"]
DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"

pytestmark = [pytest.mark.urls("tests.portal.urls"), pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_a_customer_reads_the_catalogue_and_downloads_it(live_server: LiveServer, page: Page, tmp_path: Path) -> None:
    application = Application.objects.create(uid="acme", name="Acme Corp")
    EventType.objects.create(
        name="order.placed",
        description="An order was placed.",
        version=2,
        schema=ORDER,
        example={"id": "o_1", "lines": [{"sku": "tea", "quantity": 2}]},
    )
    EventType.objects.create(name="order.voided", description="Use order.cancelled.", deprecated=True)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(live_server.url + login_path(application))
    page.get_by_role("button", name="Continue as Acme Corp").click()
    page.get_by_role("link", name="Event catalogue").click()
    expect(page.get_by_role("heading", name="Event catalogue")).to_be_visible()

    placed = page.locator("article", has=page.get_by_role("heading", name="order.placed"))
    expect(placed.get_by_text("An order was placed.")).to_be_visible()
    expect(placed.get_by_text("version 2")).to_be_visible()
    expect(placed.get_by_role("row", name="lines[].quantity integer ≥ 1")).to_be_visible()
    expect(placed.locator("pre.example")).to_contain_text('"sku": "tea"')
    expect(placed.locator("pre.schema")).to_be_hidden()
    placed.get_by_text("JSON Schema").click()
    expect(placed.locator("pre.schema")).to_contain_text('"$defs"')
    voided = page.locator("article", has=page.get_by_role("heading", name="order.voided"))
    expect(voided.get_by_text("Deprecated")).to_be_visible()
    folder = DOCS_IMAGES if os.environ.get("HOOKHUB_SCREENSHOTS") == "1" else tmp_path
    page.screenshot(path=str(folder / "portal-catalogue.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download OpenAPI").click()
    saved = tmp_path / "webhooks.openapi.json"
    download.value.save_as(saved)
    assert sorted(json.loads(saved.read_text())["webhooks"]) == ["order.placed", "order.voided"]
    assert problems == []
