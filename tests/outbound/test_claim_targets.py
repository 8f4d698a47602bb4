"""What a claim keeps of an endpoint between claims (``jobs._targets``): its URL, headers and decoded signing keys are
used again while the endpoint's version (``updated_at``, read by the claim's candidate read) is the same, and read
afresh as soon as it moves, or ``KEEP_SECONDS`` after they were worked out. The claims run against the real
database; nothing is sent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import hookhub
from hookhub.models import Application, Delivery, Endpoint
from hookhub.outbound import claims, control, jobs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbound_settings")]


@pytest.fixture
def target() -> Endpoint:
    app = Application.objects.create(uid="kept")
    return Endpoint.objects.create(application=app, url="http://127.0.0.1:9/first")


def claim_one(n: int, **kwargs: object) -> tuple[jobs.Job, list[str]]:
    """Send one message, claim its delivery; the job and the statements of the claim."""
    hookhub.send("kept.test", {"n": n}, application="kept")
    with CaptureQueriesContext(connection) as queries:
        made = claims.claim("w", 10, **kwargs)  # type: ignore[arg-type]
    assert len(made) == 1, made
    Delivery.objects.filter(pk=made[0].delivery_id).update(status=Delivery.Status.SUCCEEDED)
    return made[0], [q["sql"] for q in queries.captured_queries]


def reads_the_endpoint(statements: list[str]) -> bool:
    table = Endpoint._meta.db_table
    return any(s.startswith("SELECT") and f'"{table}"."secret"' in s for s in statements)


def test_an_unchanged_endpoint_is_not_read_again(target: Endpoint) -> None:
    first, statements = claim_one(1)
    assert reads_the_endpoint(statements)
    second, statements = claim_one(2)
    assert not reads_the_endpoint(statements), statements
    assert second.url == first.url == target.url
    assert second.signer is first.signer  # the keys were decoded once


def test_a_change_through_save_is_used_by_the_next_claim(target: Endpoint) -> None:
    claim_one(1)
    target.url = "http://127.0.0.1:9/second"
    target.headers = {"X-Team": "blue"}
    target.save()
    job, statements = claim_one(2)
    assert reads_the_endpoint(statements)
    assert job.url == "http://127.0.0.1:9/second"
    assert job.headers["X-Team"] == "blue"


def test_a_rotated_secret_signs_with_both_keys_at_the_next_claim(target: Endpoint) -> None:
    first, _ = claim_one(1)
    assert first.signer is not None
    assert len(first.signer.keys) == 1
    control.rotate_secret(target)
    job, _ = claim_one(2)
    assert job.signer is not None
    assert len(job.signer.keys) == 2


def test_enabling_again_reads_the_endpoint_afresh(target: Endpoint) -> None:
    claim_one(1)
    control.disable(target)
    Endpoint.objects.filter(pk=target.pk).update(url="http://127.0.0.1:9/moved")  # around save(): version kept
    control.enable(target)  # ...but enabling moves it
    job, _ = claim_one(2)
    assert job.url == "http://127.0.0.1:9/moved"


def test_a_change_around_save_is_seen_once_the_kept_target_expires(target: Endpoint) -> None:
    claim_one(1)
    Endpoint.objects.filter(pk=target.pk).update(url="http://127.0.0.1:9/around")  # updated_at unchanged
    job, _ = claim_one(2)
    assert job.url == target.url  # kept: the version did not move
    later = timezone.now() + timedelta(seconds=jobs.KEEP_SECONDS + 1)
    job, statements = claim_one(3, now=later)
    assert reads_the_endpoint(statements)
    assert job.url == "http://127.0.0.1:9/around"
