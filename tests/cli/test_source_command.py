from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from hookhub.inbound.verifiers import available
from hookhub.models import Source
from tests.support.cli import run_both

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("hookhub", *args, stdout=out)
    return out.getvalue()


def test_add_prints_the_full_receive_url() -> None:
    url = run("source", "add", "stripe", "--verifier", "stripe", "--secret", "whsec_a", "--secret", "whsec_b")
    source = Source.objects.get(name="stripe")
    assert url.strip() == f"https://hooks.example.com/webhooks/code/{source.slug}/"
    assert len(source.slug) >= 22  # at least 128 random bits, URL-safe base64
    assert source.secrets == ["whsec_a", "whsec_b"]


def test_add_parses_options_limits_and_confirmer() -> None:
    run(
        "source", "add", "code", "--verifier", "token", "--secret", "abc123",
        "--option", "header=Codeunderscored-Webhook-Token", "--rate-limit", "100/s", "--allow-ip", "10.0.0.0/8",
        "--max-body-size", "2048", "--retention-days", "3", "--confirmer", "http",
        "--confirmer-option", "url=https://api.example.com/events/{external_id}",
    )  # fmt: skip
    source = Source.objects.get(name="code")
    assert source.options == {"header": "Codeunderscored-Webhook-Token"}
    assert (source.rate_limit, source.allowed_ips, source.max_body_size, source.retention_days) == (
        "100/s",
        ["10.0.0.0/8"],
        2048,
        3,
    )
    assert source.confirmer_options == {"url": "https://api.example.com/events/{external_id}"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--verifier", "nope", "--secret", "x"], "Unknown verifier 'nope'"),
        (["--verifier", "github"], "needs at least one secret"),
        (["--verifier", "hmac", "--secret", "x", "--option", "algorithm=md5"], "algorithm must be one of"),
        (["--verifier", "token", "--secret", "x", "--option", "colour=blue"], "Unknown option 'colour'"),
        (["--verifier", "token", "--secret", "x", "--rate-limit", "fast"], "invalid rate"),
        (["--verifier", "token", "--secret", "x", "--allow-ip", "10.0.0.300/8"], "does not appear to be"),
        (["--verifier", "token", "--secret", "x", "--option", "novalue"], "key=value"),
    ],
)
def test_add_refuses_bad_input_with_a_clear_error(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run("source", "add", "bad", *args)
    assert not Source.objects.exists()


def test_add_refuses_a_duplicate_name() -> None:
    run("source", "add", "a", "--verifier", "token", "--secret", "x")
    with pytest.raises(CommandError, match="already exists"):
        run("source", "add", "a", "--verifier", "token", "--secret", "y")


def test_list_show_disable_enable_remove() -> None:
    run("source", "add", "gh", "--verifier", "github", "--secret", "topsecret")
    assert "gh\tgithub\thttps://hooks.example.com/webhooks/code/" in run("source", "list")
    shown = json.loads(run("source", "show", "gh"))
    assert shown["secrets"] == ["[9 characters]"]
    assert "topsecret" not in json.dumps(shown)
    run("source", "disable", "gh")
    assert not Source.objects.get(name="gh").enabled
    assert "(disabled)" in run("source", "list")
    run("source", "enable", "gh")
    assert Source.objects.get(name="gh").enabled
    run("source", "remove", "gh")
    assert not Source.objects.exists()
    with pytest.raises(CommandError, match="No source named 'gh'"):
        run("source", "show", "gh")


def test_add_help_lists_every_verifier_with_issue_20s_seven(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_both("source", "add", "--help")
    assert info.value.code == 0
    listed = " ".join(capsys.readouterr().out.split())  # argparse wraps the list over lines
    new = ("aws-sns", "twitch", "hubspot", "typeform", "calendly", "microsoft-graph", "google-pubsub")
    assert set(new) <= set(available())
    for name in available():
        assert name in listed, name
