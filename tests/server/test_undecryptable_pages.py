"""The gateway's pages (admin, portal) answer a wrong encryption key with a plain 503, not an HTML 500."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from hookhub.crypto import DecryptionError
from hookhub.server.middleware import UndecryptableSecrets


def test_a_page_that_meets_an_undecryptable_secret_answers_503_in_plain_text(rf: RequestFactory) -> None:
    def view(request: HttpRequest) -> HttpResponse:
        raise AssertionError("not called")

    middleware = UndecryptableSecrets(view)
    request = rf.get("/admin/hookhub/source/")
    response = middleware.process_exception(request, DecryptionError("no key opens it"))
    assert response is not None
    assert (response.status_code, response["Content-Type"], response["Retry-After"]) == (
        503,
        "text/plain; charset=utf-8",
        "60",
    )
    assert b"hookhub.E011" in response.content
    assert middleware.process_exception(request, ValueError("a bug")) is None  # other errors stay 500s
