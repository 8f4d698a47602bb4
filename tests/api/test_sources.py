from __future__ import annotations

import pytest
from django.utils import timezone

from hookhub.models import Application, InboundMessage, Source
from tests.support.api import Api, error_of


def test_creates_lists_gets_updates_and_deletes_a_source(api: Api, app_a: Application) -> None:
    body = {
        "name": "stripe",
        "verifier": "stripe",
        "secrets": ["whsec_first-secret-value", "whsec_second"],
        "options": {"tolerance": 600},
        "rate_limit": "100/s",
        "allowed_ips": ["203.0.113.0/24"],
        "retention_days": 7,
        "forward_to": "app-a",
    }
    created = api.post("/sources", body)
    assert created.status_code == 201, created.content
    out = created.json()
    source = Source.objects.get()
    assert out["url"] == f"https://hooks.example.com/webhooks/code/{source.slug}/"
    assert out["secrets"] == {"count": 2, "lengths": [24, 12]}
    assert b"first-secret-value" not in created.content
    assert (out["verifier"], out["options"], out["rate_limit"], out["forward_to"]) == (
        "stripe",
        {"tolerance": 600},
        "100/s",
        "app-a",
    )

    listed = api.get("/sources").json()["data"]
    assert [s["name"] for s in listed] == ["stripe"]
    assert b"whsec_" not in api.get("/sources").content
    assert api.get("/sources/stripe").json()["retention_days"] == 7

    updated = api.patch("/sources/stripe", {"secrets": ["whsec_third"], "enabled": False, "forward_to": None})
    assert updated.status_code == 200
    assert (updated.json()["secrets"], updated.json()["enabled"], updated.json()["forward_to"]) == (
        {"count": 1, "lengths": [11]},
        False,
        None,
    )
    source.refresh_from_db()
    assert source.secrets == ["whsec_third"]

    assert api.delete("/sources/stripe").status_code == 204
    assert not Source.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a b", "verifier": "token", "secrets": ["s"]}, "name"),
        ({"name": "a", "verifier": "nope", "secrets": ["s"]}, "verifier"),
        ({"name": "a", "verifier": "hookhub.x.Y", "secrets": ["s"]}, "verifier"),
        ({"name": "a", "verifier": "token"}, "secrets"),
        ({"name": "a", "verifier": "token", "secrets": ["s"], "options": {"nope": 1}}, "options.nope"),
        ({"name": "a", "verifier": "stripe", "secrets": ["s"], "options": {"tolerance": "x"}}, "options.tolerance"),
        (
            {"name": "a", "verifier": "github", "secrets": ["s"], "options": {"dedupe_by_body": "yes"}},
            "options.dedupe_by_body",
        ),
        ({"name": "a", "verifier": "token", "secrets": ["s"], "rate_limit": "fast"}, "rate_limit"),
        ({"name": "a", "verifier": "token", "secrets": ["s"], "allowed_ips": ["1.2.3.4", "x"]}, "allowed_ips.1"),
        ({"name": "a", "verifier": "token", "secrets": ["s"], "forward_to": "nope"}, "forward_to"),
        ({"name": "a", "verifier": "token", "secrets": ["s"], "confirmer": "os.system"}, "confirmer"),
        ({"name": "a", "verifier": "token", "secrets": ["s"], "max_body_size": 0}, "max_body_size"),
        ({"name": "a", "verifier": "token", "secrets": ["s"], "slug": "a/b"}, "slug"),
    ],
)
def test_validation_errors_name_the_field(api: Api, app_a: Application, body: dict[str, object], field: str) -> None:
    response = api.post("/sources", body)
    assert response.status_code == 422, response.content
    assert error_of(response)["field"] == field
    assert not Source.objects.exists()


def test_dedupe_by_body_is_an_option_of_every_verifier(api: Api) -> None:
    body = {"name": "gh", "verifier": "github", "secrets": ["s"], "options": {"dedupe_by_body": True}}
    created = api.post("/sources", body)
    assert created.status_code == 201, created.content
    assert Source.objects.get().options == {"dedupe_by_body": True}


def test_refuses_duplicates_and_deleting_a_source_with_messages(api: Api) -> None:
    assert api.post("/sources", {"name": "a", "verifier": "token", "secrets": ["s"]}).status_code == 201
    assert error_of(api.post("/sources", {"name": "a", "verifier": "token", "secrets": ["s"]}))["code"] == (
        "already_exists"
    )
    InboundMessage.objects.create(source=Source.objects.get(), received_at=timezone.now(), body=b"{}")
    response = api.delete("/sources/a")
    assert (response.status_code, error_of(response)["code"]) == (409, "source_has_messages")


def test_sources_declared_in_settings_are_read_only(api: Api) -> None:
    Source.objects.create(name="declared", verifier="token", managed=True)
    assert api.get("/sources/declared").json()["managed"] is True
    assert error_of(api.patch("/sources/declared", {"enabled": False}))["code"] == "source_managed"
    assert error_of(api.delete("/sources/declared"))["code"] == "source_managed"


@pytest.mark.parametrize("slug", ["k3x9-random-abcdefgh", "changeme-please-now", "short"])
def test_refuses_a_placeholder_or_short_slug(api: Api, slug: str) -> None:
    body = {"name": "typed", "verifier": "token", "secrets": ["s"], "slug": slug}
    response = api.post("/sources", body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "slug"
    assert "secrets.token_urlsafe(16)" in error["message"]
    good = api.post("/sources", {**body, "slug": "Zq8v2LmP0tRw7sKd"})
    assert good.status_code == 201
