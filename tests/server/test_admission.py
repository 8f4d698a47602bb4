"""The gateway checks the receive path's admission gate before Django, so turning a request away costs next to
nothing; a request let in is marked, and the view does not count it twice."""

from __future__ import annotations

import io
from typing import Any

import pytest

from hookhub.inbound import admission
from hookhub.server import wsgi


def environ(method: str = "POST", path: str = "/hooks/some-slug/") -> dict[str, Any]:
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": "2",
        "wsgi.input": io.BytesIO(b"{}"),
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


class Answer:
    status = ""
    headers: dict[str, str]

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.status, self.headers = status, dict(headers)


@pytest.fixture
def max_receiving(settings: Any) -> int:
    settings.HOOKHUB = {**getattr(settings, "HOOKHUB", {}), "MAX_RECEIVING": 1}
    return 1


def test_full_gateway_answers_503_before_django(max_receiving: int) -> None:
    answer = Answer()
    env = environ()
    with admission.gate.enter(max_receiving):
        body = b"".join(wsgi.application(env, answer))
    assert answer.status == "503 Service Unavailable"
    assert answer.headers["Retry-After"] == "1"
    assert body == admission.BUSY.encode()
    assert admission.ADMITTED not in env
    assert env["wsgi.input"].tell() == 0  # the body was not even read


def test_admitted_request_reaches_django_marked_and_leaves_the_gate(max_receiving: int) -> None:
    answer = Answer()
    env = environ()
    body = b"".join(wsgi.application(env, answer))
    assert answer.status.startswith("404")  # the test project mounts no receive view at /hooks/
    assert body
    assert env[admission.ADMITTED] is True
    assert admission.gate.inside == 0


@pytest.mark.parametrize(("method", "path"), [("GET", "/hooks/some-slug/"), ("POST", "/api/applications")])
def test_other_requests_are_not_counted(max_receiving: int, method: str, path: str) -> None:
    answer = Answer()
    env = environ(method, path)
    with admission.gate.enter(max_receiving):
        b"".join(wsgi.application(env, answer))
    assert not answer.status.startswith("503")
    assert admission.ADMITTED not in env
