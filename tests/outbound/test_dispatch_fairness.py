"""The dispatcher's fairness rules, against real servers on 127.0.0.1 and the real database: how much of one
endpoint or application a worker holds, what counts as in flight, surplus and long-waiting deliveries given back,
and an endpoint that keeps timing out probed with one request at a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections
from django.db.models import Sum

import hookhub
from hookhub.models import Application, Attempt, Delivery, Endpoint, EndpointPace
from hookhub.outbound import claims
from hookhub.outbound.dispatch import Dispatcher

from .conftest import Hanging, Sink, deliver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("outbound_settings")]
Status = Delivery.Status


def fan_out(uid: str, urls: list[str], messages: int, **fields: Any) -> Application:
    app = Application.objects.create(uid=uid)
    for url in urls:
        Endpoint.objects.create(application=app, url=url, **fields)
    for i in range(messages):
        hookhub.send("order.created", {"n": i}, application=app)
    return app


def watch(seconds: float, sample: Callable[[Dispatcher], None], hanging: Hanging) -> Callable[[Dispatcher], bool]:
    """Sample the dispatcher for ``seconds``; then stop the dead server, so the worker stops without waiting out
    its requests' timeout."""
    deadline = time.monotonic() + seconds

    def until(dispatcher: Dispatcher) -> bool:
        sample(dispatcher)
        if time.monotonic() < deadline:
            return False
        hanging.stop()
        return True

    return until


def in_thread[T](func: Callable[[], T]) -> T:
    """Run a query from the dispatcher's loop (where Django refuses to): on a thread of its own."""

    def run() -> T:
        try:
            return func()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def leased() -> int:
    return in_thread(Delivery.objects.filter(status=Status.SENDING).count)


def test_a_worker_holds_its_slots_plus_a_quarter_of_one_endpoint(
    hanging: Hanging,
    outbound_settings: Callable[..., None],
) -> None:
    outbound_settings(DELIVERY_TIMEOUT=5.0, MAX_IN_FLIGHT_PER_ENDPOINT=8)
    fan_out("acme", [hanging.url("/dead")], 60)
    held: list[int] = []

    def sample(dispatcher: Dispatcher) -> None:
        held.append(sum(dispatcher.in_hand.values()))

    dispatcher = deliver(watch(1.5, sample, hanging))
    tries = Delivery.objects.aggregate(n=Sum("attempts"))["n"]
    assert max(held) == 10  # 8 slots + 2
    assert hanging.most == 8
    assert dispatcher.released > 0  # the claims' surplus went back at once, its tries not counted
    # A try counted for each request sent (those queued when the dead server stops are refused: tries too), none
    # for what went back unsent.
    assert tries == Attempt.objects.count() >= hanging.accepted
    assert leased() == 0


def test_a_fifo_endpoint_is_held_one_at_a_time(hanging: Hanging) -> None:
    fan_out("acme", [hanging.url("/dead")], 10, fifo=True)
    held: list[int] = []
    leases: list[int] = []

    def sample(dispatcher: Dispatcher) -> None:
        held.append(sum(dispatcher.in_hand.values()))
        if len(held) % 20 == 0:
            leases.append(leased())

    deliver(watch(1.0, sample, hanging))
    assert max(held) == 1
    assert max(leases) == 1
    assert hanging.most == 1


def test_a_worker_holds_no_more_of_one_application_than_its_share(
    hanging: Hanging,
    outbound_settings: Callable[..., None],
) -> None:
    outbound_settings(DELIVERY_TIMEOUT=5.0, MAX_IN_FLIGHT_PER_APPLICATION=12, MAX_IN_FLIGHT_PER_ENDPOINT=8)
    fan_out("acme", [hanging.url(f"/dead/{i}") for i in range(4)], 20)  # 4 x 10 could be held without the rule
    held: list[int] = []

    def sample(dispatcher: Dispatcher) -> None:
        held.append(sum(dispatcher.in_hand.values()))

    deliver(watch(1.5, sample, hanging))
    assert max(held) == 12
    assert hanging.most == 12


def test_an_application_alone_is_lent_more_than_its_share_through_its_prompt_endpoints(
    sink: Sink,
    hanging: Hanging,
    outbound_settings: Callable[..., None],
) -> None:
    """Nothing else due: the application at its cap (8) is lent room through the endpoints that answered promptly,
    keeping a reserve of 8 of the worker's 40 free; the endpoint that hangs is never lent to."""
    outbound_settings(
        DELIVERY_TIMEOUT=5.0, MAX_IN_FLIGHT=40, MAX_IN_FLIGHT_PER_APPLICATION=8, MAX_IN_FLIGHT_PER_ENDPOINT=4
    )
    prompt = [sink.url(f"/delay/200/{i}") for i in range(6)]
    fan_out("acme", [*prompt, hanging.url("/dead")], 25)  # 6 endpoints x (4 slots + 1) could be held: 30
    held: list[int] = []
    flying: list[int] = []

    def until(dispatcher: Dispatcher) -> bool:
        held.append(sum(dispatcher.in_hand.values()))
        flying.append(dispatcher.flying)
        if sum(len(sink.to(f"/delay/200/{i}")) for i in range(6)) < 6 * 25:
            return False
        hanging.stop()
        return True

    deliver(until, timeout=30)
    assert Delivery.objects.filter(status=Status.SUCCEEDED).count() == 6 * 25
    assert max(held) > 16  # twice its share: lent
    assert max(flying) <= 40 - 8  # the reserve stayed free
    assert hanging.most <= 5  # the dead endpoint had its fair share only: it never answered, so never lent to


def test_a_loan_ends_when_another_application_has_deliveries_due(
    sink: Sink,
    outbound_settings: Callable[..., None],
) -> None:
    """Another application's deliveries, once due, are claimed into the reserve at once (the claim that finds them
    leaves out the lent application, which is over its cap), not after the lent application's backlog."""
    outbound_settings(MAX_IN_FLIGHT=40, MAX_IN_FLIGHT_PER_APPLICATION=8, MAX_IN_FLIGHT_PER_ENDPOINT=4)
    fan_out("acme", [sink.url(f"/delay/300/{i}") for i in range(6)], 25)
    other = Application.objects.create(uid="other")
    Endpoint.objects.create(application=other, url=sink.url("/other"))
    sent: list[int] = []

    def until(dispatcher: Dispatcher) -> bool:
        acme = sum(n for app, n in dispatcher.hand.by_application.items() if app != other.pk)
        if acme > 16 and not sent:
            in_thread(lambda: [hookhub.send("order.created", {"n": i}, application=other) for i in range(5)])
            sent.append(acme)
        return len(sink.to("/other")) == 5 and bool(sent)

    deliver(until, timeout=30)
    assert sent, "acme was never lent more than twice its share"
    assert len(sink.to("/other")) == 5
    assert Delivery.objects.filter(endpoint__application=other, status=Status.SUCCEEDED).count() == 5
    # acme's 150 deliveries at 0.3 s each, ~30 at a time, take seconds: "other" did not wait for them to finish
    assert Delivery.objects.filter(endpoint__application__uid="acme", status=Status.PENDING).exists()


def test_deliveries_waiting_for_a_busy_endpoint_leave_room_for_others(
    sink: Sink,
    hanging: Hanging,
    outbound_settings: Callable[..., None],
) -> None:
    """Four slots for the dead endpoint, one more of its jobs waiting for them: only the four flying count, so the
    worker (five requests at most) still sends the healthy endpoint's messages while the dead one hangs."""
    outbound_settings(DELIVERY_TIMEOUT=10.0, MAX_IN_FLIGHT=5, MAX_IN_FLIGHT_PER_ENDPOINT=4)
    fan_out("dead", [hanging.url("/dead")], 20)
    fan_out("alive", [sink.url("/ok")], 5)
    flying: list[int] = []
    waiting: list[int] = []

    def until(dispatcher: Dispatcher) -> bool:
        flying.append(dispatcher.flying)
        waiting.append(sum(len(lane.queue) for lane in dispatcher.lanes.values()))
        if len(sink.to("/ok")) < 5:
            return False
        hanging.stop()
        return True

    deliver(until)
    assert len(sink.to("/ok")) == 5
    assert Delivery.objects.filter(endpoint__url=sink.url("/ok"), status=Status.SUCCEEDED).count() == 5
    assert hanging.most == 4
    assert max(flying) <= 5
    assert max(waiting) >= 1  # there were jobs waiting for the dead endpoint's slots, and they took no room


def test_surplus_of_a_claim_is_given_back_at_once(
    hanging: Hanging,
    outbound_settings: Callable[..., None],
) -> None:
    """Whatever the claim returns beyond the caps goes back at once, due now and with its try not counted."""
    outbound_settings(DELIVERY_TIMEOUT=5.0, MAX_IN_FLIGHT_PER_ENDPOINT=4)
    fan_out("acme", [hanging.url("/dead")], 30)
    pending: list[tuple[int, int]] = []

    def sample(dispatcher: Dispatcher) -> None:
        if dispatcher.released and not pending:
            pending.append((leased(), in_thread(Delivery.objects.filter(status=Status.PENDING, attempts=0).count)))

    dispatcher = deliver(watch(1.0, sample, hanging))
    assert dispatcher.released > 0
    [(held, untouched)] = pending
    assert held <= 5  # 4 slots + 1
    assert held + untouched == 30


def test_an_endpoint_that_keeps_timing_out_is_probed_with_one_request_until_it_answers(
    hanging: Hanging,
    outbound_settings: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outbound_settings(DELIVERY_TIMEOUT=1.0, MAX_IN_FLIGHT_PER_ENDPOINT=4, RETRY_SCHEDULE=[0.1] * 10)
    fan_out("acme", [hanging.url("/dead")], 30)
    phases: dict[str, list[int]] = {"probing": [], "recovered": []}
    state: dict[str, float] = {}
    pump = Dispatcher._pump

    def pump_watched(dispatcher: Dispatcher, transport: Any, lane: Any) -> None:
        # The slots the lane starts requests with once the endpoint answers, seen at every start: an answered lane
        # lives only while it has deliveries in hand, which on a quick machine can be shorter than any sampling.
        if "answering" in state and not lane.probing:
            phases["recovered"].append(lane.slots)
        pump(dispatcher, transport, lane)

    monkeypatch.setattr(Dispatcher, "_pump", pump_watched)

    def until(dispatcher: Dispatcher) -> bool:
        now = time.monotonic()
        if phases["recovered"]:
            return in_thread(Delivery.objects.filter(status=Status.SUCCEEDED).count) == 30
        lane = next(iter(dispatcher.lanes.values()), None)
        if lane is None:
            return False
        if "probing" not in state and lane.probing:
            state["probing"] = now
        probing_since = state.get("probing")
        # Once what flew before the endpoint became a probe has timed out, one request at a time.
        if probing_since is not None and "answering" not in state and now > probing_since + 1.5:
            phases["probing"].append(lane.in_hand)
            if now > probing_since + 3.5:
                state["answering"] = now
                hanging.answering.set()
        return False

    deliver(until, timeout=30)
    assert phases["probing"], "the endpoint never became a probe"
    assert max(phases["probing"]) == 1
    assert set(phases["recovered"]) == {4}  # an answer gave the endpoint its slots back
    assert Delivery.objects.filter(status=Status.SUCCEEDED).count() == 30


def test_deliveries_waiting_too_long_are_given_back_before_their_lease_runs_out(
    hanging: Hanging,
    outbound_settings: Callable[..., None],
) -> None:
    """An endpoint that got slow after its deliveries were claimed: the one waiting for a slot longer than the
    delivery timeout allows within its lease goes back (due again, try not counted) instead of being sent after its
    lease ran out (sent twice, and counted as abandoned)."""
    outbound_settings(LEASE_SECONDS=6, DELIVERY_TIMEOUT=5.0, MAX_IN_FLIGHT_PER_ENDPOINT=4)  # given back after 3 s
    fan_out("acme", [hanging.url("/dead")], 5)
    oldest: list[float] = []

    def sample(dispatcher: Dispatcher) -> None:
        now = time.monotonic()
        oldest.extend(now - claimed for lane in dispatcher.lanes.values() for _, claimed in lane.queue)

    dispatcher = deliver(watch(4.0, sample, hanging))
    assert dispatcher.released >= 1
    assert max(oldest) < 3.5
    assert not Attempt.objects.filter(error=claims.ABANDONED).exists()
    assert not Delivery.objects.filter(last_error=claims.ABANDONED).exists()


def test_a_delivery_whose_shared_rate_slot_comes_after_its_lease_is_given_back_unsent(
    sink: Sink, outbound_settings: Callable[..., None]
) -> None:
    # Other workers have reserved the endpoint's slots for the next minute: waiting for one would outlive the lease
    # (4 s here, so a delivery may be held 2 s), and the delivery would be sent twice. It is given back instead.
    outbound_settings(LEASE_SECONDS=4, DELIVERY_TIMEOUT=1.0)
    app = fan_out("acme", [sink.url("/paced")], 1, rate_limit=1.0)
    endpoint = Endpoint.objects.get(application=app)
    EndpointPace.objects.create(endpoint=endpoint, next_at=time.time() + 60, rate=1.0)

    dispatcher = deliver(lambda d: d.released >= 1, timeout=10)

    delivery = Delivery.objects.get()
    assert dispatcher.released >= 1
    assert dispatcher.sent == 0
    assert not sink.to("/paced")
    assert (delivery.status, delivery.attempts, delivery.locked_by) == (Status.PENDING, 0, "")
    assert not Attempt.objects.exists()
