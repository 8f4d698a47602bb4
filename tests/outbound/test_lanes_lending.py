"""Which endpoints a loan may claim for (``lanes.Hand.lendable``): the rule, without a dispatcher or a database."""

from __future__ import annotations

import pytest
from django.test import override_settings

from hookhub.outbound.jobs import Job
from hookhub.outbound.lanes import PROMPT_KEPT, PROMPT_SECONDS, Hand
from hookhub.outbound.transport import Outcome


def job(endpoint: str, application: int, *, fifo: bool = False) -> Job:
    return Job(
        delivery_id=1, message_id="msg_1", application_uid="app", event_type="e", endpoint_id=endpoint,
        url="http://127.0.0.1/", body=b"{}", headers={}, signer=None, attempt=1, created_at=0.0, fifo=fifo,
        rate_limit=None, application_id=application,
    )  # fmt: skip


def answered(hand: Hand, endpoint: str, application: int, outcome: Outcome, *, fifo: bool = False) -> None:
    """A claim found more due for ``endpoint`` than it took, and a try of it ended with ``outcome``."""
    hand.claimed({endpoint: application})
    j = job(endpoint, application, fifo=fifo)
    hand.answered(j, hand.lane(j), outcome)


FAST = Outcome(200, b"ok", {}, 0.01)
SLOW = Outcome(200, b"ok", {}, PROMPT_SECONDS + 0.5)
ERROR_STATUS = Outcome(500, b"no", {}, 0.01)  # an answer, whatever its status: prompt
TIMEOUT = Outcome(None, b"", {}, 5.0, "timed out", "timeout")


def test_only_endpoints_whose_latest_answer_was_prompt_of_the_given_applications() -> None:
    hand = Hand()
    answered(hand, "fast", 1, FAST)
    answered(hand, "error", 1, ERROR_STATUS)
    answered(hand, "slow", 1, SLOW)
    answered(hand, "hangs", 1, TIMEOUT)
    answered(hand, "other-app", 2, FAST)
    assert sorted(hand.lendable({1})) == ["error", "fast"]
    assert hand.lendable({2}) == ["other-app"]
    assert hand.lendable(set()) == []


def test_a_slow_answer_or_a_timeout_ends_it_and_the_next_prompt_answer_restores_it() -> None:
    hand = Hand()
    answered(hand, "e", 1, FAST)
    answered(hand, "e", 1, TIMEOUT)
    assert hand.lendable({1}) == []
    answered(hand, "e", 1, FAST)
    assert hand.lendable({1}) == ["e"]
    answered(hand, "e", 1, SLOW)
    assert hand.lendable({1}) == []


def test_kept_when_the_lane_goes_but_not_at_the_lanes_cap_nor_for_a_fifo_endpoint() -> None:
    hand = Hand()
    answered(hand, "e", 1, FAST)
    hand.lanes.clear()  # nothing in hand: the lane is gone, what was learnt of the endpoint is not
    assert hand.lendable({1}) == ["e"]
    lane = hand.lane(job("e", 1))
    lane.in_hand = lane.cap
    assert hand.lendable({1}) == []
    answered(hand, "f", 1, FAST, fifo=True)
    assert "f" not in hand.lendable({1})


def test_only_endpoints_a_claim_found_more_due_for_until_a_loan_finds_none() -> None:
    hand = Hand()
    j = job("fan-out", 1)
    hand.answered(j, hand.lane(j), FAST)  # prompt, but every claim took all it had due: a fan-out's endpoint
    assert hand.lendable({1}) == []
    answered(hand, "busy", 1, FAST)
    assert hand.lendable({1}) == ["busy"]
    hand.claimed({}, dry={"busy"})  # a loan found nothing for it
    assert hand.lendable({1}) == []
    hand.claimed({"busy": 1})  # a later claim found more again
    assert hand.lendable({1}) == ["busy"]


@pytest.mark.parametrize("extra", [1, 10])
def test_only_the_most_recent_prompt_endpoints_are_remembered(extra: int) -> None:
    hand = Hand()
    for n in range(PROMPT_KEPT + extra):
        answered(hand, f"e{n}", 1, FAST)
    assert len(hand.prompt) == PROMPT_KEPT
    assert "e0" not in hand.prompt
    assert f"e{PROMPT_KEPT + extra - 1}" in hand.prompt


def test_a_loan_keeps_a_reserve_of_an_applications_share_free() -> None:
    with override_settings(HOOKHUB={"MAX_IN_FLIGHT_PER_APPLICATION": 10}):
        assert Hand().lend_room(30) == 20
        assert Hand().lend_room(5) == -5  # nothing to lend
