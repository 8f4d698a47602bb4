"""An endpoint's own retry schedule and timeout, through the real dispatcher against real servers on 127.0.0.1; and
the one rule they share with ``RETRY_SCHEDULE`` and ``DELIVERY_TIMEOUT``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

import hookhub
from hookhub.models import Application, Attempt, Delivery, Endpoint
from hookhub.outbound import claims, jobs, lanes, schedule
from hookhub.outbound.lanes import Hand
from hookhub.outbound.transport import Outcome

from .conftest import Sink, deliver, recorded

pytestmark = pytest.mark.usefixtures("outbound_settings")
dispatched = pytest.mark.django_db(transaction=True)  # the dispatcher's database thread sees committed rows only
Status = Delivery.Status


@pytest.fixture
def app() -> Application:
    return Application.objects.create(uid="acme")


@dispatched
def test_the_endpoints_own_schedule_decides_the_next_try_and_the_last(
    app: Application, sink: Sink, outbound_settings: Callable[..., None]
) -> None:
    outbound_settings(RETRY_SCHEDULE=[0.05] * 5)
    slow_retries = Endpoint.objects.create(application=app, url=sink.url("/status/500"), retry_schedule=[600, 7200])
    two_tries = Endpoint.objects.create(application=app, url=sink.url("/status/500?2"), retry_schedule=[0.05])
    hookhub.send("a.b", {}, application=app)
    before = timezone.now()
    deliver(recorded(3))  # one try to the first; two (its whole schedule) to the second

    waiting = Delivery.objects.get(endpoint=slow_retries)
    assert (waiting.status, waiting.attempts) == (Status.PENDING, 1)
    assert waiting.next_attempt_at is not None
    wait = (waiting.next_attempt_at - before).total_seconds()
    assert 600 * 0.8 <= wait <= 600 * 1.2 + 5  # its schedule's first wait, with the jitter; not the global 0.05 s
    done = Delivery.objects.get(endpoint=two_tries)
    assert (done.status, done.attempts) == (Status.FAILED, 2)  # 1 wait: 2 tries, not the global 6


@dispatched
def test_the_endpoints_own_timeout_bounds_its_tries(
    app: Application, sink: Sink, outbound_settings: Callable[..., None]
) -> None:
    """The sink's /slow answers 200 after 3 s: within the global 5 s, past this endpoint's own 0.5 s."""
    outbound_settings(DELIVERY_TIMEOUT=5.0, RETRY_SCHEDULE=[600])
    Endpoint.objects.create(application=app, url=sink.url("/slow"), timeout=0.5)
    hookhub.send("a.b", {}, application=app)
    deliver(recorded(1))
    attempt = Attempt.objects.get()
    assert attempt.error == "timed out after 0.5 s"
    assert attempt.duration_ms < 2000
    assert Delivery.objects.get().status == Status.PENDING


def suspect(endpoint: Endpoint, attempts: int) -> Delivery:
    """A delivery whose lease ran out again after a takeover: it is claimed alone, and failed on its last try."""
    msg = hookhub.send("a.b", {}, application=endpoint.application)
    Delivery.objects.filter(message=msg).update(
        status=Status.SENDING,
        attempts=attempts,
        locked_by="dead-worker",
        locked_until=timezone.now() - dt.timedelta(seconds=1),
        last_error=claims.ABANDONED,
    )
    return Delivery.objects.get(message=msg)


@dispatched
def test_an_abandoned_delivery_has_its_endpoints_number_of_tries(app: Application) -> None:
    short = Endpoint.objects.create(application=app, url="https://acme.example/short", retry_schedule=[5])
    spent = suspect(short, attempts=2)  # 2 tries: all its schedule gives (the global one gives 8)
    assert claims.claim("worker", 1, alone=True) == []
    spent.refresh_from_db()
    assert (spent.status, spent.last_error) == (Status.FAILED, claims.ABANDONED)

    short.delete()
    default = Endpoint.objects.create(application=app, url="https://acme.example/default")
    suspect(default, attempts=2)
    assert [job.attempt for job in claims.claim("worker", 1, alone=True)] == [3]  # claimed again: tries are left


def test_a_longer_timeout_is_held_for_less_so_its_try_ends_inside_the_lease(
    outbound_settings: Callable[..., None],
) -> None:
    outbound_settings(LEASE_SECONDS=120, DELIVERY_TIMEOUT=15.0)
    hand = Hand()
    for endpoint_id, timeout in (("ep_usual", None), ("ep_slow", 50.0)):
        job = jobs.problem_job(1, "msg_1", endpoint_id, 0, Outcome(None, b"", {}, 0.0, "", ""))
        job.timeout, job.problem = timeout, None
        lane = hand.lane(job)
        hand.hold(job, lane)
        lane.queue.append((job, 0.0))
    assert (lanes.hold_limit(), lanes.hold_limit(50.0)) == (100, 65)  # 65 + 50 + 5 = the 120 s lease
    assert [job.endpoint_id for job in hand.stale(66.0)] == ["ep_slow"]
    assert [job.endpoint_id for job in hand.stale(101.0)] == ["ep_usual"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s,1m,10m,1h", [5, 60, 600, 3600]), ("30, 1.5m ,2H,1d", [30, 90, 7200, 86400]), (".5s", [0.5])],
)
def test_a_schedule_reads_as_text_and_back(text: str, seconds: list[float]) -> None:
    assert schedule.parse_schedule(text) == seconds
    assert schedule.parse_schedule(schedule.format_schedule(seconds)) == seconds


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([], "a retry schedule is a list of 1 to 20 waits"),
        ("5,300", "a retry schedule is a list of 1 to 20 waits"),  # text is for people; settings are lists
        ([5, True], "wait 2 of the retry schedule must be a number of seconds above 0"),
        ([5, float("nan")], "wait 2 of the retry schedule must be a number"),
        ([8 * 86400], "at most 604800 (7d), got 691200"),
        ([1] * 21, "at most 20 waits, got 21"),
    ],
)
def test_the_schedule_rule(value: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        schedule.check_schedule(value)
