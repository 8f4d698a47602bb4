"""Svix is Standard Webhooks under ``svix-`` header names: the whole Standard Webhooks battery, renamed."""

from __future__ import annotations

import pytest

from hookhub.exceptions import VerificationError
from hookhub.inbound.verifiers import WebhookRequest, get_verifier_class
from hookhub.signing import generate_secret

from . import test_standard_webhooks as standard
from .contract import NOW


class TestSvixV1(standard.TestStandardWebhooksV1):
    verifier = "svix"
    prefix = "svix"
    signature_header = "svix-signature"


class TestSvixV1a(standard.TestStandardWebhooksV1a):
    verifier = "svix"
    prefix = "svix"
    signature_header = "svix-signature"


class TestSvixScheme(standard.TestStandardWebhooksScheme):
    verifier = "svix"
    prefix = "svix"


def test_webhook_prefixed_headers_do_not_satisfy_the_svix_verifier() -> None:
    secret = generate_secret()
    body = b"{}"
    headers = {
        "webhook-id": standard.MSG_ID,
        "webhook-timestamp": str(NOW),
        "webhook-signature": standard.hmac_entry(secret, standard.MSG_ID, NOW, body),
    }
    verifier = get_verifier_class("svix")([secret], now=lambda: NOW)
    with pytest.raises(VerificationError, match="svix-id"):
        verifier.verify(WebhookRequest.build(body, headers))
