from __future__ import annotations

import base64
import re
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.utils.datastructures import CaseInsensitiveMapping

from hookhub.exceptions import VerificationError
from hookhub.signing import StandardWebhook, generate_ed25519_keypair, generate_secret, signed_content

BASE64 = r"[A-Za-z0-9+/]+={0,2}"
BODY = b'{"type": "invoice.paid"}'


def test_generate_secret_is_whsec_and_24_random_bytes() -> None:
    secret = generate_secret()
    assert re.fullmatch(f"whsec_{BASE64}", secret)
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    assert len({generate_secret() for _ in range(20)}) == 20


def test_keypair_is_seed_and_public_key_in_whsk_and_whpk() -> None:
    private, public = generate_ed25519_keypair()
    assert re.fullmatch(f"whsk_{BASE64}", private)
    assert re.fullmatch(f"whpk_{BASE64}", public)
    raw_private = base64.b64decode(private.removeprefix("whsk_"), validate=True)
    raw_public = base64.b64decode(public.removeprefix("whpk_"), validate=True)
    assert len(raw_private) == 64
    assert len(raw_public) == 32
    derived = ed25519.Ed25519PrivateKey.from_private_bytes(raw_private[:32]).public_key().public_bytes_raw()
    assert derived == raw_public == raw_private[32:]
    assert generate_ed25519_keypair() != (private, public)


def test_signed_content_is_id_timestamp_and_body_joined_by_dots() -> None:
    assert signed_content("msg_1", 1614265330, b"{}") == b"msg_1.1614265330.{}"


def test_each_signing_key_emits_one_entry_in_order() -> None:
    first, second = generate_secret(), generate_secret()
    private, public = generate_ed25519_keypair()
    signature = StandardWebhook([first, private, public, second]).signature("msg_1", 1000, BODY)
    entries = signature.split(" ")
    assert [entry.split(",", 1)[0] for entry in entries] == ["v1", "v1a", "v1"]
    assert entries[0] == StandardWebhook([first]).signature("msg_1", 1000, BODY)
    assert entries[1] == StandardWebhook([private]).signature("msg_1", 1000, BODY)
    assert entries[2] == StandardWebhook([second]).signature("msg_1", 1000, BODY)


def test_public_keys_alone_cannot_sign() -> None:
    _, public = generate_ed25519_keypair()
    with pytest.raises(ValueError, match="public keys only verify"):
        StandardWebhook([public]).signature("msg_1", 1000, BODY)


def test_a_public_key_verifies_what_its_private_key_signed() -> None:
    private, public = generate_ed25519_keypair()
    headers = StandardWebhook([private]).headers("msg_1", BODY, 1000)
    StandardWebhook([public]).verify(CaseInsensitiveMapping(headers), BODY, now=lambda: 1000)


def test_a_key_that_did_not_sign_is_refused() -> None:
    headers = StandardWebhook([generate_secret()]).headers("msg_1", BODY, 1000)
    with pytest.raises(VerificationError, match="No matching signature"):
        StandardWebhook([generate_secret()]).verify(CaseInsensitiveMapping(headers), BODY, now=lambda: 1000)


def test_headers_use_the_prefix_and_default_to_now() -> None:
    before = int(time.time())
    headers = StandardWebhook([generate_secret()], header_prefix="svix").headers("msg_1", BODY)
    assert set(headers) == {"svix-id", "svix-timestamp", "svix-signature"}
    assert headers["svix-id"] == "msg_1"
    assert before <= int(headers["svix-timestamp"]) <= int(time.time())


def test_the_whsec_prefix_is_optional() -> None:
    secret = generate_secret()
    bare = secret.removeprefix("whsec_")
    assert StandardWebhook([bare]).signature("msg_1", 1000, BODY) == StandardWebhook([secret]).signature(
        "msg_1", 1000, BODY
    )


@pytest.mark.parametrize(
    ("secrets", "message"),
    [([], "at least one secret"), (["whsec_not base64!"], "base64"), (["whpk_AAAA"], "32 bytes")],
)
def test_unusable_keys_are_value_errors(secrets: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StandardWebhook(secrets)


def test_public_key_of_a_private_key_verifies_its_signatures() -> None:
    from hookhub.signing import StandardWebhook, generate_ed25519_keypair, public_key

    private, public = generate_ed25519_keypair()
    assert public_key(private) == public
    headers = StandardWebhook([private]).headers("msg_1", b"{}")
    StandardWebhook([public_key(private)]).verify(headers, b"{}")
