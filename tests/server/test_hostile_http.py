"""Hostile requests at the HTTP level, against a real ``hookhub serve`` (granian in front of the receive view): header
limits, a body larger than the source's limit refused with 413 before it has all arrived, chunked bodies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from bench.gateway import Gateway, running_gateway

from .raw import chunk, exchange, head, stored_bodies

pytestmark = pytest.mark.slow

LIMIT = 1024
TOKEN = "X-Webhook-Token: s3cret"
JSON = "Content-Type: application/json"


@dataclass
class Target:
    gw: Gateway
    path: str


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with running_gateway(tmp_path_factory.mktemp("hostile-gw")) as gw:
        url = gw.hookhub(
            "source", "add", "hostile", "--verifier", "token", "--secret", "s3cret", "--max-body-size", str(LIMIT)
        ).strip()
        yield Target(gw, urlsplit(url).path)


def test_a_64_kb_header_is_accepted_and_the_request_stored(target: Target) -> None:
    body = b'{"big": "header"}'
    big = "X-Big: " + "a" * 64 * 1024
    answer = exchange(target.gw, head(target.path, TOKEN, JSON, big, f"Content-Length: {len(body)}"), [body])
    assert answer.status == 200, answer
    assert body in stored_bodies(target.gw, "hostile")


@pytest.mark.parametrize(
    "headers",
    [["X-Big: " + "a" * 1024 * 1024], [f"X-H{i}: v" for i in range(500)]],
    ids=["a 1 MB header", "500 headers"],
)
def test_headers_past_the_servers_limits_get_431_and_nothing_is_stored(target: Target, headers: list[str]) -> None:
    marker = b'{"refused": "431"}'
    request_head = head(target.path, TOKEN, JSON, *headers, f"Content-Length: {len(marker)}")
    answer = exchange(target.gw, request_head, [marker])
    assert answer.status == 431, answer
    assert marker not in stored_bodies(target.gw, "hostile")


def test_a_declared_huge_body_is_refused_before_it_is_sent(target: Target) -> None:
    # 1 GB declared, 2 KB sent, connection held open: a server that read the body first would never answer.
    answer = exchange(target.gw, head(target.path, TOKEN, JSON, "Content-Length: 1000000000"), [b"{" * 2048])
    assert answer.status == 413, answer
    assert f"larger than {LIMIT} bytes".encode() in answer.body


def test_a_chunked_body_over_the_limit_is_refused_before_it_ends(target: Target) -> None:
    # Three chunks past the limit and no last chunk: the answer comes while the body is still "in flight".
    parts = [chunk(b"a" * 1024) for _ in range(3)]
    answer = exchange(target.gw, head(target.path, TOKEN, JSON, "Transfer-Encoding: chunked"), parts)
    assert answer.status == 413, answer


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_a_chunked_body_within_the_limit_is_stored_intact(target: Target, content_type: str) -> None:
    body = f'{{"chunked": "{content_type}"}}'.encode()
    parts = [chunk(body[:5]), chunk(body[5:]), b"0\r\n\r\n"]
    request_head = head(target.path, TOKEN, f"Content-Type: {content_type}", "Transfer-Encoding: chunked")
    answer = exchange(target.gw, request_head, parts)
    assert answer.status == 200, answer
    assert body in stored_bodies(target.gw, "hostile")  # not an empty row acknowledged with a 200
