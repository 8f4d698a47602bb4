"""Issue 15, hardening (e): blank secrets at every front door, and replayed bodies under schemes without a
timestamp; what each checked is recorded for docs/reliability.md."""

from __future__ import annotations

import hashlib
import hmac
import io

import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from hookhub.api.tokens import create_token
from hookhub.models import InboundMessage, Source
from tests.support.api import Api

from .results import Result, record

BLANK = ["", "   ", "\t"]
KEY = "hP0bqkI4ssJu1ysvb8f7WBv5dWl4aHbtJf3LkmDmyxo="
SOURCES_URL = "/admin/hookhub/source/"


def _cli(blank: str) -> str | None:
    try:
        call_command("hookhub", "source", "add", "cli", "--verifier", "github", "--secret", "s3cret",
                     "--secret", blank, stdout=io.StringIO())  # fmt: skip
    except CommandError as exc:
        return str(exc)
    return None


def _api(api: Api, blank: str) -> str | None:
    response = api.post("/sources", {"name": "api", "verifier": "github", "secrets": ["s3cret", blank]})
    if response.status_code == 201:
        return None
    error = response.json()["error"]
    assert (response.status_code, error["field"]) == (422, "secrets.1"), response.content
    return str(error["message"])


def _api_update(api: Api, blank: str) -> str | None:
    Source.objects.create(name="patched", verifier="github", secrets=["s3cret"])
    response = api.patch("/sources/patched", {"secrets": [blank, "s3cret"]})
    if response.status_code == 200:
        return None
    error = response.json()["error"]
    assert (response.status_code, error["field"]) == (422, "secrets.0"), response.content
    return str(error["message"])


def _admin(admin: Client, text: str, name: str = "admin", url: str = f"{SOURCES_URL}add/") -> str | None:
    data = {
        "name": name, "slug": f"{name}-slug", "enabled": "on", "verifier": "github", "options": "{}",
        "secrets": text, "rate_limit": "", "allowed_ips": "", "max_body_size": "", "retention_days": "",
        "confirmer": "", "confirmer_options": "{}", "_save": "Save",
    }  # fmt: skip
    response = admin.post(url, data)
    if response.status_code == 302:
        return None
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["secrets"], errors
    return str(errors["secrets"][0])


def _admin_stored_blank(admin: Client) -> str | None:
    """A source saved with a blank secret before the rule existed cannot be saved again until it is fixed."""
    legacy = Source.objects.create(name="legacy", verifier="github", secrets=["s3cret", ""])
    return _admin(admin, "", name="legacy", url=f"{SOURCES_URL}{legacy.pk}/change/")


def _settings(blank: str) -> str | None:
    declared = {"legacy": {"VERIFIER": "github", "SECRETS": ["s3cret", blank]}}
    hookhub = {"ENCRYPTION_KEYS": [KEY], "SOURCES": declared, "PUBLIC_URL": "https://h.example"}
    with override_settings(HOOKHUB=hookhub):
        errors = [m for m in run_checks(tags=["hookhub"]) if m.id == "hookhub.E001"]
    return errors[0].msg if errors else None


def _settings_env(monkeypatch: pytest.MonkeyPatch, blank: str) -> str | None:
    monkeypatch.setenv("HOOKHUB_TEST_BLANK_SECRET", blank or " ")
    declared = {"env": {"VERIFIER": "github", "SECRETS": ["s3cret"], "SECRETS_ENV": ["HOOKHUB_TEST_BLANK_SECRET"]}}
    hookhub = {"ENCRYPTION_KEYS": [KEY], "SOURCES": declared, "PUBLIC_URL": "https://h.example"}
    with override_settings(HOOKHUB=hookhub):
        errors = [m for m in run_checks(tags=["hookhub"]) if m.id == "hookhub.E001"]
    return errors[0].msg if errors else None


@pytest.mark.django_db
def test_blank_secrets_are_refused_at_every_front_door(
    admin_client: Client, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = Api(client, create_token(name="global")[0])
    refusals: dict[str, str | None] = {}
    stored = 0

    def attempt(door: str, message: str | None) -> None:
        nonlocal stored
        refusals[door] = message
        if message is None:  # accepted: the blank secret was stored (the legacy row's stays blank when refused)
            stored += sum(1 for source in Source.objects.all() if any(not s.strip() for s in source.secrets))
        Source.objects.all().delete()

    for blank in BLANK:
        attempt(f"cli {blank!r}", _cli(blank))
        attempt(f"api create {blank!r}", _api(api, blank))
        attempt(f"api update {blank!r}", _api_update(api, blank))
        attempt(f"settings {blank!r}", _settings(blank))
        attempt(f"settings env {blank!r}", _settings_env(monkeypatch, blank))
    attempt("admin whitespace only", _admin(admin_client, "  \n\t\n"))
    attempt("admin stored blank", _admin_stored_blank(admin_client))

    accepted = sorted(door for door, message in refusals.items() if message is None)
    unclear = sorted(door for door, message in refusals.items() if message and "whitespace" not in message)
    record(
        Result(
            section="hostile",
            case="Blank secrets at every front door (CLI, API, admin, settings)",
            requests=len(refusals),
            stored=stored,
            lost=0,
            outcome=f"{len(refusals)} attempts to configure an empty or whitespace-only secret, "
            f"{len(accepted)} accepted",
            figures={"accepted": len(accepted), "doors": ["cli", "api", "admin", "settings"]},
        )
    )
    assert accepted == []
    assert unclear == []
    assert stored == 0


# Replays under a scheme without a timestamp --------------------------------------------------------------------

GITHUB_SECRET = "It's a Secret to Everybody"


def github_post(client: Client, slug: str, body: bytes, delivery: str) -> int:
    digest = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery}
    response = client.post(f"/webhooks/code/{slug}/", data=body, content_type="application/json", headers=headers)
    return response.status_code


@pytest.mark.django_db(transaction=True)
def test_a_replayed_body_with_a_new_delivery_id_is_stored_once_with_dedupe_by_body() -> None:
    """GitHub signs the body only: a captured request sent again under a new ``X-GitHub-Delivery`` verifies. By
    default it is stored (and processed) again, as the provider's id is the dedupe key; with ``dedupe_by_body`` the
    body's digest is, so the replay is answered 200 and not stored. A provider's retry (same id, same body) is
    deduplicated either way, and a different body still is a message of its own."""
    Source.objects.create(name="plain", slug="plain-slug", verifier="github", secrets=[GITHUB_SECRET])
    Source.objects.create(
        name="guarded", slug="guarded-slug", verifier="github", secrets=[GITHUB_SECRET],
        options={"dedupe_by_body": True},
    )  # fmt: skip
    client = Client()
    captured = b'{"ref": "refs/heads/main", "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246"}'
    other = b'{"ref": "refs/heads/main", "after": "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"}'
    sent: list[tuple[str, int]] = []
    for slug in ("plain-slug", "guarded-slug"):
        for body, delivery in ((captured, "d-1"), (captured, "d-1"), (captured, "d-2"), (captured, "d-3"),
                               (other, "d-4")):  # fmt: skip
            sent.append((slug, github_post(client, slug, body, delivery)))
    assert {status for _, status in sent} == {200}

    def stored(name: str) -> list[bytes]:
        rows = InboundMessage.objects.filter(source__name=name).order_by("pk")
        return [bytes(m.body) for m in rows]

    plain, guarded = stored("plain"), stored("guarded")
    replays_stored_plain = plain.count(captured) - 1
    replays_stored_guarded = guarded.count(captured) - 1
    record(
        Result(
            section="hostile",
            case="Replayed body with a new delivery id (no-timestamp scheme)",
            requests=len(sent),
            acknowledged=len(sent),
            stored=len(plain) + len(guarded),
            duplicates=replays_stored_guarded,
            lost=0,
            outcome=f"a captured GitHub body replayed twice under new delivery ids: stored twice more by default, "
            f"{replays_stored_guarded} times with dedupe_by_body; the provider's retry stored once either way",
            figures={"stored twice (default)": replays_stored_plain, "stored twice (dedupe_by_body)": 0},
        )
    )
    assert plain == [captured, captured, captured, other]  # the default: the delivery id is the key
    assert replays_stored_plain == 2
    assert guarded == [captured, other]
    assert replays_stored_guarded == 0
    guarded_ids = list(
        InboundMessage.objects.filter(source__name="guarded").order_by("pk").values_list("external_id", flat=True)
    )
    assert guarded_ids == ["sha256:" + hashlib.sha256(b).hexdigest() for b in (captured, other)]
