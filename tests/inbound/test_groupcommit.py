"""The group committer: rows of requests that arrive together share one transaction, each is answered only once its
own row is stored, a duplicate is answered as one without failing its neighbours, and a failed round fails only
its own requests. Real threads, each with its own database connection, against the test database."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.utils import timezone

from hookhub.inbound import groupcommit
from hookhub.inbound.groupcommit import GroupCommitter, Outcome
from hookhub.models import InboundMessage, Source
from tests.support.inbound import held_first_round, run_threads

__all__ = ["held_first_round"]  # a fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def source() -> Source:
    return Source.objects.create(name="gc", verifier="token", secrets=["t"])


def message(source: Source, external_id: str | None, source_id: int | None = None) -> InboundMessage:
    now = timezone.now()
    return InboundMessage(
        source_id=source_id or source.pk,
        received_at=now,
        body=b"{}",
        payload={},
        external_id=external_id,
        next_attempt_at=now,
    )


def test_rows_that_arrive_during_a_commit_share_the_next_one(
    source: Source, held_first_round: tuple[threading.Event, threading.Event]
) -> None:
    entered, release = held_first_round
    committer = GroupCommitter()
    outcomes: dict[int, Outcome] = {}
    leader = run_threads(1, lambda i: outcomes.__setitem__(100, committer.store(message(source, "first"))))
    assert entered.wait(30)
    followers = run_threads(20, lambda i: outcomes.__setitem__(i, committer.store(message(source, f"evt_{i}"))))
    while len(committer._queue) < 20:  # every follower has queued behind the held round
        threading.Event().wait(0.01)
    assert not outcomes  # nobody is answered before its row is written
    release.set()
    for t in leader + followers:
        t.join(30)
    assert set(outcomes.values()) == {Outcome.STORED}
    assert len(outcomes) == 21
    assert committer.rows == 21
    assert committer.rounds == 2  # the twenty followers were written by one transaction
    assert InboundMessage.objects.filter(source=source).count() == 21


def test_no_request_is_answered_before_its_rounds_commit(source: Source, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second round is held inside COMMIT, after its INSERT: none of its twenty requests may have an answer, and
    no other connection sees their rows; once COMMIT goes through, every one is answered."""
    first_entered, first_release = threading.Event(), threading.Event()
    at_commit, commit_release = threading.Event(), threading.Event()
    rounds: list[list[Any]] = []
    held_connection: list[Any] = []
    write = groupcommit._write

    def observed(batch: Any) -> None:
        rounds.append(list(batch))
        if len(rounds) == 1:  # hold the first round so that the twenty queue behind it and share the second
            first_entered.set()
            assert first_release.wait(30)
        write(batch)
        if len(rounds) == 2:
            held_connection.append(connections[DEFAULT_DB_ALIAS])  # the second round's leader's own connection

    commit = type(connections[DEFAULT_DB_ALIAS]).commit

    def held_commit(self: Any) -> None:
        if held_connection and self is held_connection[0] and not at_commit.is_set():
            at_commit.set()
            assert commit_release.wait(30)
        commit(self)

    monkeypatch.setattr(groupcommit, "_write", observed)
    monkeypatch.setattr(type(connections[DEFAULT_DB_ALIAS]), "commit", held_commit)
    committer = GroupCommitter()
    outcomes: dict[int, Outcome] = {}
    threads: list[threading.Thread] = []
    try:
        threads += run_threads(1, lambda i: outcomes.__setitem__(100, committer.store(message(source, "first"))))
        assert first_entered.wait(30)
        threads += run_threads(20, lambda i: outcomes.__setitem__(i, committer.store(message(source, f"evt_{i}"))))
        while len(committer._queue) < 20:
            threading.Event().wait(0.01)
        first_release.set()
        assert at_commit.wait(30)
        # Between the second round's INSERT and its COMMIT:
        assert len(rounds) == 2
        assert len(rounds[1]) == 20
        assert [(p.done, p.outcome, p.error) for p in rounds[1]] == [(False, None, None)] * 20
        assert all(p.message.pk is not None for p in rounds[1])  # the INSERT ran and gave each row its id
        assert list(outcomes) == [100]  # only the first round's request, committed, is answered
        assert list(InboundMessage.objects.values_list("external_id", flat=True)) == ["first"]
    finally:
        first_release.set()
        commit_release.set()
        for t in threads:
            t.join(30)
    assert len(outcomes) == 21
    assert set(outcomes.values()) == {Outcome.STORED}
    assert InboundMessage.objects.filter(source=source).count() == 21


def test_rows_that_arrive_while_the_leader_waits_for_the_write_lock_join_its_commit(source: Source) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's one write lock: PostgreSQL's commits do not wait for each other")
    holding, release = threading.Event(), threading.Event()

    def another_writer(i: int) -> None:  # another process's commit, or the worker's, in progress
        with transaction.atomic():
            holding.set()
            assert release.wait(30)

    [other] = run_threads(1, another_writer)
    assert holding.wait(30)
    committer = GroupCommitter()
    outcomes: dict[int, Outcome] = {}
    leader = run_threads(1, lambda i: outcomes.__setitem__(100, committer.store(message(source, "first"))))
    while not committer._leading:
        threading.Event().wait(0.01)
    followers = run_threads(20, lambda i: outcomes.__setitem__(i, committer.store(message(source, f"evt_{i}"))))
    deadline = time.monotonic() + 30
    while len(committer._queue) < 20 and time.monotonic() < deadline:  # the twenty have queued
        threading.Event().wait(0.01)
    assert not outcomes
    release.set()
    for t in [other, *leader, *followers]:
        t.join(30)
    assert set(outcomes.values()) == {Outcome.STORED}
    assert len(outcomes) == 21
    # One commit for all of them: taking the rows before the lock was had, the leader wrote its own row alone and
    # the twenty waited for the lock a second time.
    assert (committer.rounds, committer.rows) == (1, 21)
    assert InboundMessage.objects.filter(source=source).count() == 21


def test_a_duplicate_in_a_round_is_answered_as_one_and_its_neighbours_are_stored(
    source: Source, held_first_round: tuple[threading.Event, threading.Event]
) -> None:
    entered, release = held_first_round
    committer = GroupCommitter()
    InboundMessage.objects.bulk_create([message(source, "already")])
    outcomes: dict[str, Outcome] = {}
    ids = ["a", "already", "b", "b", "c"]
    leader = run_threads(1, lambda i: committer.store(message(source, "lead")))
    assert entered.wait(30)
    followers = run_threads(
        len(ids), lambda i: outcomes.__setitem__(f"{i}:{ids[i]}", committer.store(message(source, ids[i])))
    )
    while len(committer._queue) < len(ids):
        threading.Event().wait(0.01)
    release.set()
    for t in leader + followers:
        t.join(30)
    by_id: dict[str, list[Outcome]] = {}
    for key, outcome in outcomes.items():
        by_id.setdefault(key.split(":", 1)[1], []).append(outcome)
    assert by_id["a"] == [Outcome.STORED]
    assert by_id["c"] == [Outcome.STORED]
    assert by_id["already"] == [Outcome.DUPLICATE]
    assert sorted(by_id["b"]) == [Outcome.DUPLICATE, Outcome.STORED]
    stored = InboundMessage.objects.filter(source=source).values_list("external_id", flat=True)
    assert sorted(s or "" for s in stored) == ["a", "already", "b", "c", "lead"]


def test_a_row_the_database_refuses_fails_alone(source: Source) -> None:
    committer = GroupCommitter()
    missing_source = Source.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with pytest.raises(DatabaseError):  # no such source: the foreign key refuses it
        committer.store(message(source, "orphan", source_id=missing_source + 1000))
    assert committer.store(message(source, "fine")) is Outcome.STORED
    assert list(InboundMessage.objects.values_list("external_id", flat=True)) == ["fine"]


def test_a_refused_row_in_a_round_fails_alone_and_its_neighbours_are_stored(
    source: Source, held_first_round: tuple[threading.Event, threading.Event]
) -> None:
    # On PostgreSQL the foreign key is checked at COMMIT, after the INSERT gave every row its id.
    entered, release = held_first_round
    committer = GroupCommitter()
    missing_source = (Source.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    results: dict[str, Outcome | str] = {}

    def store(name: str, source_id: int | None = None) -> None:
        try:
            results[name] = committer.store(message(source, name, source_id=source_id))
        except DatabaseError as exc:
            results[name] = type(exc).__name__

    leader = run_threads(1, lambda i: store("lead"))
    assert entered.wait(30)
    followers = run_threads(3, lambda i: store(*[("a", None), ("orphan", missing_source), ("b", None)][i]))
    while len(committer._queue) < 3:
        threading.Event().wait(0.01)
    release.set()
    for t in leader + followers:
        t.join(30)
    assert results == {"lead": Outcome.STORED, "a": Outcome.STORED, "b": Outcome.STORED, "orphan": "IntegrityError"}
    stored = InboundMessage.objects.filter(source=source).values_list("external_id", flat=True)
    assert sorted(s or "" for s in stored) == ["a", "b", "lead"]


def test_a_failed_round_fails_every_request_in_it_and_the_next_round_works(
    source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    committer = GroupCommitter()

    def outage(parts: Any) -> None:
        raise DatabaseError("the database went away")

    monkeypatch.setattr(groupcommit, "insert_prepared", outage)
    with pytest.raises(DatabaseError, match="went away"):
        committer.store(message(source, "x"))
    monkeypatch.undo()
    assert committer.store(message(source, "x")) is Outcome.STORED
    assert InboundMessage.objects.count() == 1


def test_many_threads_store_every_row_exactly_once(source: Source) -> None:
    committer = GroupCommitter(max_rows=8)
    per_thread, threads_count = 25, 8
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    given: dict[int, str] = {}

    def work(i: int) -> None:
        for j in range(per_thread):
            m = message(source, f"t{i}-{j}")
            outcome = committer.store(m)
            with lock:
                outcomes.append(outcome)
                assert m.pk is not None
                given[m.pk] = f"t{i}-{j}"

    for t in run_threads(threads_count, work):
        t.join(60)
    assert outcomes.count(Outcome.STORED) == per_thread * threads_count
    assert committer.rows == per_thread * threads_count
    assert InboundMessage.objects.filter(source=source).count() == per_thread * threads_count
    assert not committer._leading
    assert not committer._queue
    # Each instance got the id of its own row.
    assert dict(InboundMessage.objects.values_list("pk", "external_id")) == given
