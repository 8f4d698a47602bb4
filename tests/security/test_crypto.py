"""Secrets at rest: what the database holds, reading it back, legacy rows, rotation, wrong keys, the migration."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings

from hookhub import crypto
from hookhub.inbound import sources
from hookhub.models import Endpoint, Source
from hookhub.outbound import control, jobs
from hookhub.signing import StandardWebhook
from tests.support.stored import raw_rows, stored_token

from .conftest import (
    ENDPOINT_HEADER,
    KEY_A,
    KEY_B,
    KEY_C,
    SOURCE_SECRET,
    SOURCE_TOKEN,
    Secrets,
    make_secrets,
)

pytestmark = pytest.mark.django_db
Keys = Callable[..., None]


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("hookhub", "rotate-encryption-key", *args, stdout=out)
    return out.getvalue()


def assert_reads(made: Secrets) -> None:
    """Every secret reads back as it was written, through instances, values() and the code that uses them."""
    source = Source.objects.get(pk=made.source.pk)
    assert source.secrets == [SOURCE_SECRET]
    assert source.options == {"verify_token": SOURCE_TOKEN}
    assert sources.secrets_of(source) == [SOURCE_SECRET]
    sources.build_verifier(source)  # the verifier is built from the plaintext
    for before in made.endpoints:
        after = Endpoint.objects.get(pk=before.pk)
        assert (after.secret, after.previous_secrets, after.headers) == (
            before.secret,
            before.previous_secrets,
            {"Authorization": ENDPOINT_HEADER},
        )
        row = Endpoint.objects.filter(pk=before.pk).values("secret", "previous_secrets").get()
        assert row == {"secret": before.secret, "previous_secrets": before.previous_secrets}


def assert_no_plaintext(made: Secrets) -> None:
    stored = raw_rows()
    assert stored, "no rows read"
    for value in stored:
        assert crypto.is_encrypted(stored_token(value)), value
    for secret in made.plaintexts:
        assert not any(secret in value for value in stored), secret


def test_the_database_holds_no_plaintext_secret(keys: Keys) -> None:
    keys(KEY_A)
    made = make_secrets()
    assert_no_plaintext(made)
    assert_reads(made)


def test_bulk_update_and_update_store_ciphertext_too(keys: Keys) -> None:
    keys(KEY_A)
    made = make_secrets()
    first, second = made.endpoints
    first.secret = "whsec_" + "A" * 32
    Endpoint.objects.bulk_update([first], ["secret"])
    Endpoint.objects.filter(pk=second.pk).update(headers={"Authorization": ENDPOINT_HEADER})
    Source.objects.filter(pk=made.source.pk).update(secrets=[SOURCE_SECRET])
    assert_no_plaintext(made)
    assert Endpoint.objects.get(pk=first.pk).secret == first.secret
    assert Endpoint.objects.values_list("headers", flat=True).get(pk=second.pk) == {"Authorization": ENDPOINT_HEADER}


def test_the_same_secret_encrypts_differently_each_time(keys: Keys) -> None:
    keys(KEY_A)
    tokens = {crypto.encrypt("same") for _ in range(5)}
    assert len(tokens) == 5
    assert {crypto.decrypt(t) for t in tokens} == {"same"}


def test_legacy_plaintext_rows_still_read_and_are_encrypted_on_the_next_write(keys: Keys) -> None:
    keys(KEY_A)
    with crypto.plaintext_writes():  # as code before migration 0005 wrote them
        made = make_secrets()
    assert SOURCE_SECRET in " ".join(raw_rows())
    assert_reads(made)
    control.rotate_secret(made.endpoints[0])
    made.endpoints[0].refresh_from_db()
    assert crypto.is_encrypted(stored_token(_raw("hookhub_endpoint", "secret", made.endpoints[0].pk)))
    assert "3 row(s)" in rotate()  # the source and the other endpoint (the rotated one is already current)
    assert_no_plaintext(made)
    assert_reads(made)


def _raw(table: str, column: str, pk: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT CAST({column} AS TEXT) FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return str(cursor.fetchone()[0])


def test_rotation_moves_every_row_to_the_new_key(keys: Keys) -> None:
    keys(KEY_A)
    made = make_secrets(endpoints=3)
    keys(KEY_B, KEY_A)
    assert_reads(made)  # old rows read with the old key, still configured
    assert not any(crypto.keyring().is_current(stored_token(v)) for v in raw_rows())

    out = rotate("--batch-size", "2")  # several batches
    assert "Re-encrypted 4 row(s)" in out
    assert "the others can be removed" in out
    assert all(crypto.keyring().is_current(stored_token(v)) for v in raw_rows())
    assert "Re-encrypted 0 row(s)" in rotate()  # nothing left to move: rerunning is harmless

    keys(KEY_B)
    assert_reads(made)
    assert_no_plaintext(made)


def test_rows_under_a_key_no_longer_configured_are_a_clear_error(keys: Keys) -> None:
    keys(KEY_A)
    made = make_secrets()
    keys(KEY_C)
    with pytest.raises(crypto.DecryptionError, match="cannot be decrypted with any key") as caught:
        Endpoint.objects.get(pk=made.endpoints[0].pk)
    assert KEY_A not in str(caught.value)
    assert KEY_C not in str(caught.value)


def test_rotation_with_a_bad_key_is_a_check_error_not_a_traceback(keys: Keys) -> None:
    keys("not-a-fernet-key")
    with pytest.raises(SystemCheckError, match=r"hookhub\.E008"):
        rotate()


def test_a_comma_separated_string_configures_several_keys(keys: Keys) -> None:
    keys(KEY_A)
    token = crypto.encrypt("x")
    with override_settings(HOOKHUB={"ENCRYPTION_KEYS": f"{KEY_B}, {KEY_A}"}):
        assert crypto.decrypt(token) == "x"
        assert not crypto.keyring().is_current(token)


def test_without_keys_one_is_derived_from_secret_key_and_its_fallbacks_still_decrypt() -> None:
    with override_settings(HOOKHUB={}, SECRET_KEY="first-secret-key"):
        token = crypto.encrypt("x")
        assert crypto.keyring().derived
    with override_settings(HOOKHUB={}, SECRET_KEY="second-secret-key", SECRET_KEY_FALLBACKS=["first-secret-key"]):
        assert crypto.decrypt(token) == "x"
    with override_settings(HOOKHUB={}, SECRET_KEY="second-secret-key"), pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


def test_the_dispatcher_signs_with_the_decrypted_secret(keys: Keys) -> None:
    keys(KEY_A)
    made = make_secrets(endpoints=1)
    endpoint = Endpoint.objects.get(pk=made.endpoints[0].pk)
    signer = StandardWebhook(jobs.signing_keys(endpoint, endpoint.updated_at))
    headers = signer.headers("msg_1", b"{}")
    StandardWebhook([endpoint.secret]).verify(headers, b"{}")


@pytest.mark.django_db(transaction=True)
def test_migration_0005_encrypts_existing_rows_and_its_reverse_decrypts_them(keys: Keys) -> None:
    keys(KEY_A)
    executor = MigrationExecutor(connection)
    before, after = [("hookhub", "0004_inbound_source_index")], [("hookhub", "0005_encrypt_secrets")]
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        app = old.get_model("hookhub", "Application").objects.create(uid="legacy")
        old.get_model("hookhub", "Endpoint").objects.create(
            id="ep_legacy", application=app, url="https://example.com/", secret="whsec_bGVnYWN5LXNlY3JldC0xMjM0NTY3OA=="
        )
        old.get_model("hookhub", "Source").objects.create(
            name="legacy", slug="legacy", verifier="token", secrets=["t0k3n-legacy"]
        )
        assert "t0k3n-legacy" in " ".join(raw_rows())

        executor = MigrationExecutor(connection)
        executor.migrate(after)
        assert all(crypto.is_encrypted(stored_token(v)) for v in raw_rows())
        assert "t0k3n-legacy" not in " ".join(raw_rows())
        new = MigrationExecutor(connection).loader.project_state(after).apps
        assert new.get_model("hookhub", "Source").objects.get(name="legacy").secrets == ["t0k3n-legacy"]

        executor = MigrationExecutor(connection)
        executor.migrate(before)
        assert "t0k3n-legacy" in " ".join(raw_rows())
        assert "whsec_bGVnYWN5LXNlY3JldC0xMjM0NTY3OA==" in " ".join(raw_rows())
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes("hookhub"))
