"""Shortening text and URLs for narrow places (the portal, ``hookhub tail``)."""

from __future__ import annotations

import pytest

from hookhub.text import end, middle, short_url


@pytest.mark.parametrize("limit", [0, 1, 2, 5, 10, 11, 40])
def test_middle_keeps_both_ends_within_the_limit(limit: int) -> None:
    text = "abcdefghijklmnopqrstuvwxyz"
    short = middle(text, limit)
    assert len(short) <= limit
    if 5 <= limit < len(text):
        assert (short[0], short[-1]) == ("a", "z")
        assert "…" in short


def test_short_text_is_unchanged() -> None:
    assert middle("abc", 3) == "abc"
    assert end("abc", 3) == "abc"
    assert end("abcdef", 4) == "abc…"


def test_urls_sharing_a_long_prefix_stay_distinguishable() -> None:
    a = short_url("http://127.0.0.1:8000/demo/receivers/shared/prefix/receiver-a", 32)
    b = short_url("http://127.0.0.1:8000/demo/receivers/shared/prefix/receiver-b", 32)
    assert (a, b) == ("127.0.0.1:8000/…/receiver-a", "127.0.0.1:8000/…/receiver-b")


def test_a_url_that_fits_loses_only_its_scheme() -> None:
    assert short_url("https://acme.example/hooks", 48) == "acme.example/hooks"


def test_the_query_stays_when_there_is_room() -> None:
    assert short_url("https://h.example/a/b/c/d/e/f/g/last?x=1", 24) == "h.example/…/last?x=1"
    assert short_url("https://h.example/a/b/c/d/e/f/g/last?x=1&y=2222222", 24) == "h.example/…/last"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/" + "x" * 200,
        "https://" + "h" * 80 + ".example/path/end",
        "not a url at all, just a long string of text to shorten",
    ],
)
def test_nothing_exceeds_the_limit(url: str) -> None:
    assert len(short_url(url, 30)) <= 30


def test_the_tail_table_tells_endpoints_apart() -> None:
    """``hookhub tail``'s table shortens URLs with the same rule, so two receivers under one prefix stay apart."""
    import datetime as dt

    from rich.console import Console

    from hookhub.cli.tail import feed, render

    at = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
    base = "http://127.0.0.1:8000/demo/receivers/acme-billing/v2"
    rows: tuple[tuple[str, feed.Outcome, str], ...] = (
        ("receiver-a", "delivered", "200"),
        ("receiver-b", "retrying", "503"),
    )
    records = [
        feed.Record("out", n, at, outcome, code, "invoice.paid", application="acme", url=f"{base}/{name}",
                    message_id=f"msg_{n}", status_code=int(code), duration_ms=12)
        for n, (name, outcome, code) in enumerate(rows)
    ]  # fmt: skip
    console = Console(width=160, record=True, color_system=None)
    console.print(render.render(records, feed.Counts()))
    shown = console.export_text()
    assert "127.0.0.1:8000/…/receiver-a" in shown
    assert "127.0.0.1:8000/…/receiver-b" in shown
