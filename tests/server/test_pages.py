"""Security headers and CSRF on every HTML page the gateway serves: its home page, the API docs, the portal's
refusals and every admin page of hookhub's models (read from the admin registry), against a real ``hookhub serve``."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message

import pytest
from bench.gateway import Gateway, running_gateway
from django.contrib import admin
from playwright.sync_api import Browser, expect

from tests.support.browser import browser

pytestmark = pytest.mark.slow

__all__ = ["browser"]  # the Chromium fixture, shared with the portal's browser tests

ANONYMOUS = ["/", "/admin/login/", "/api/docs", "/portal/", "/portal/login/forged/"]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("pages-gw")) as gw:
        yield gw


def admin_pages() -> list[str]:
    pages = ["/admin/", "/admin/password_change/"]
    for model in admin.site._registry:
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        pages += [base, base + "add/"]
    return pages


def fetch(opener: urllib.request.OpenerDirector, url: str) -> tuple[int, Message, str]:
    try:
        with opener.open(url, timeout=30) as response:
            return int(response.status), response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


def header_problems(path: str, headers: Message) -> list[str]:
    policy = headers.get("Content-Security-Policy", "")
    problems = []
    if "frame-ancestors 'none'" not in policy:
        problems.append(f"{path}: no frame-ancestors 'none' in {policy!r}")
    script = next((d for d in policy.split(";") if d.strip().startswith("script-src")), "")
    if "'self'" not in script or "unsafe" in script:
        problems.append(f"{path}: script-src {script!r}")
    expected = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
    problems += [f"{path}: {k}={headers.get(k)!r}" for k, v in expected.items() if headers.get(k) != v]
    return problems


def post_forms_without_token(path: str, html: str) -> list[str]:
    forms = re.findall(r"<form\b[^>]*method=\"post\"[^>]*>(.*?)</form>", html, re.S | re.I)
    return [f"{path}: a POST form without csrfmiddlewaretoken" for form in forms if "csrfmiddlewaretoken" not in form]


def test_every_page_has_the_security_headers_and_every_form_a_csrf_token(gateway: Gateway) -> None:
    anonymous = urllib.request.build_opener()
    staff = gateway.admin_session()
    problems: list[str] = []
    statuses = {}
    visits = [(anonymous, p) for p in ANONYMOUS] + [(staff, p) for p in admin_pages()]
    for opener, path in visits:
        status, headers, html = fetch(opener, gateway.base + path)
        statuses[path] = status
        if "text/html" in headers.get("Content-Type", ""):
            problems += header_problems(path, headers) + post_forms_without_token(path, html)
        else:
            problems.append(f"{path}: not an HTML page ({headers.get('Content-Type')})")
    assert problems == []
    assert statuses["/portal/"] == 403
    assert statuses["/admin/hookhub/endpoint/"] == 200
    assert [p for p, s in statuses.items() if s >= 500] == []


def test_a_post_without_the_csrf_token_is_refused(gateway: Gateway) -> None:
    data = b"username=admin&password=pw-for-tests"
    request = urllib.request.Request(f"{gateway.base}/admin/login/", data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, html = int(response.status), ""
    except urllib.error.HTTPError as exc:
        status, html = exc.code, exc.read().decode()
    assert status == 403
    assert "CSRF" in html


def test_the_api_docs_render_in_a_browser_under_the_gateways_policy(gateway: Gateway, browser: Browser) -> None:
    """Swagger UI is the page most likely to need a script or style the policy refuses: it must render every
    operation with no violation reported and no console error."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    response = page.goto(gateway.base + "/api/docs")
    assert response is not None
    assert response.status == 200
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy, policy
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible(timeout=15_000)
    schema = json.loads(urllib.request.urlopen(gateway.base + "/api/openapi.json", timeout=30).read())
    expected = sum(len(methods) for methods in schema["paths"].values())
    assert operations.count() == expected > 0
    assert page.evaluate("window.__violations") == []
    assert errors == []
    page.close()
