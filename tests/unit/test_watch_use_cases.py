"""The watches' use cases and the scheduling rule, on the in-memory world."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.storage.memory_watches import MemoryWatchRepository
from application.history import InspectSchema
from application.watches import (
    ClaimDueChecks,
    DeleteWatch,
    GetWatch,
    ListWatches,
    ListWatchesQuery,
    PutWatch,
    PutWatchCommand,
    RunCheck,
    WatchQuery,
)
from domain.errors import InvalidInput, PermissionDenied, SourceNotFound, WatchNotFound
from domain.events import Action, EventFilter
from domain.sources import Column
from domain.watches import (
    CheckOutcome,
    WatchStatus,
    following_due,
    offset_seconds,
)
from tests.builders import ADMIN, READER, WRITER, register
from tests.helpers import Synced, run
from tests.unit.conftest import World

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


class Watching:
    """The watches' use cases over a world, with its watch store."""

    def __init__(self, world: World, failures: int = 3) -> None:
        self.world = world
        self.store: Any = Synced(MemoryWatchRepository(world.sources.target, world.events.target))
        inspect = InspectSchema(
            world.sources, world.connectors, world.cipher, world.clock, world.history, world.ids
        )
        self.put = PutWatch(world.sources, self.store, world.clock)
        self.get = GetWatch(world.sources, self.store)
        self.delete = DeleteWatch(world.sources, self.store)
        self.list = ListWatches(self.store)
        self.claim = ClaimDueChecks(self.store, world.clock, 60)
        self.check = RunCheck(inspect, self.store, world.clock, world.ids, failures)

    def cycle(self) -> list[CheckOutcome]:
        """Claim and run each due check once, then move the clock past the next due times
        (a minute and its largest offset)."""
        claims = run(self.claim(100))
        outcomes = [run(self.check(claim)).result.outcome for claim in claims]
        self.world.clock._now += timedelta(seconds=66)
        return outcomes


def test_put_checks_the_interval_and_the_source(world: World) -> None:
    watching = Watching(world)
    source = register(world)
    for bad in (59, 86401, 1.5, True):
        with pytest.raises(InvalidInput) as caught:
            run(watching.put(PutWatchCommand(WRITER, source.id, bad)))  # type: ignore[arg-type]
        assert caught.value.errors[0].field == "interval_seconds"
    with pytest.raises(SourceNotFound):
        run(watching.put(PutWatchCommand(WRITER, uuid4(), 60)))
    with pytest.raises(PermissionDenied):
        run(watching.put(PutWatchCommand(READER, source.id, 60)))
    watch = run(watching.put(PutWatchCommand(WRITER, source.id, 900)))
    assert (watch.source_name, watch.status, watch.created_by) == (
        "orders",
        "pending",
        "tdbk_writer",
    )
    assert watch.next_check_at == watch.created_at


def test_no_watch_and_no_source_are_told_apart(world: World) -> None:
    watching = Watching(world)
    source = register(world)
    with pytest.raises(WatchNotFound):
        run(watching.get(WatchQuery(READER, source.id)))
    with pytest.raises(WatchNotFound):
        run(watching.delete(WatchQuery(WRITER, source.id)))
    with pytest.raises(SourceNotFound):
        run(watching.get(WatchQuery(READER, uuid4())))
    with pytest.raises(SourceNotFound):
        run(watching.delete(WatchQuery(WRITER, uuid4())))
    with pytest.raises(InvalidInput):
        run(watching.list(ListWatchesQuery(READER, limit=0)))


def test_checks_record_outcomes_and_one_event_per_failure_streak(world: World) -> None:
    watching = Watching(world, failures=2)
    source = register(world)
    run(watching.put(PutWatchCommand(ADMIN, source.id, 60)))
    assert watching.cycle() == [CheckOutcome.UNCHANGED]  # the first snapshot: the baseline
    del world.connector.tables["orders"]
    assert [watching.cycle() for _ in range(4)] == [[CheckOutcome.FAILED]] * 4
    watch = run(watching.get(WatchQuery(READER, source.id)))
    assert (watch.status, watch.consecutive_failures, watch.last_reason) == (
        WatchStatus.FAILING,
        4,
        "table_not_found",
    )
    world.connector.tables["orders"] = [Column("id", "integer", False)]
    assert watching.cycle() == [CheckOutcome.BREAKING]
    world.connector.tables["orders"] = [Column("id", "integer", False), Column("note", "text")]
    assert watching.cycle() == [CheckOutcome.CHANGED]
    assert watching.cycle() == [CheckOutcome.UNCHANGED]
    trail = world.events.list(EventFilter(source_id=source.id)).events
    streak = [(e.action, e.actor, e.reason) for e in trail if e.actor == "tdb-watch"]
    assert streak == [
        (Action.SOURCE_SCHEMA_CHANGED, "tdb-watch", None),
        (Action.SOURCE_CHECK_FAILED, "tdb-watch", "table_not_found"),
        (Action.SOURCE_SCHEMA_CHANGED, "tdb-watch", None),
        (Action.SOURCE_CHECK_RECOVERED, "tdb-watch", None),
        (Action.SOURCE_SCHEMA_CHANGED, "tdb-watch", None),
    ]


def test_a_check_of_a_deleted_source_records_nothing(world: World) -> None:
    watching = Watching(world)
    source = register(world)
    run(watching.put(PutWatchCommand(ADMIN, source.id, 60)))
    (claim,) = run(watching.claim(10))
    world.sources.target._by_id.pop(source.id)  # gone between the claim and the check
    assert not run(watching.check(claim)).recorded


def test_list_filters_by_status(world: World) -> None:
    watching = Watching(world)
    source = register(world)
    other = register(world, name="other")
    for s in (source, other):
        run(watching.put(PutWatchCommand(ADMIN, s.id, 60)))
    (claim,) = run(watching.claim(1))
    run(watching.check(claim))
    ok = run(watching.list(ListWatchesQuery(READER, WatchStatus.OK))).watches
    pending = run(watching.list(ListWatchesQuery(READER, WatchStatus.PENDING))).watches
    assert [w.source_id for w in ok] + [w.source_id for w in pending] == [source.id, other.id]


@given(
    interval=st.integers(60, 86400),
    source_int=st.integers(0, 2**128 - 1),
    late=st.floats(0, 3, allow_nan=False),
    cycles=st.integers(0, 50),
)
def test_due_times_stay_on_their_grid(
    interval: int, source_int: int, late: float, cycles: int
) -> None:
    offset = offset_seconds(UUID(int=source_int), interval)
    assert 0 <= offset < 0.1 * interval
    step = timedelta(seconds=interval)
    due = T0
    for _ in range(cycles):
        # However late within an interval each check ends, the next is one interval on.
        now = due + step * (late / 3)
        following = following_due(T0, interval, offset, due, now)
        assert following - due == (step + timedelta(seconds=offset) if due == T0 else step)
        due = following


def test_a_watch_far_behind_runs_once_not_once_per_missed_time() -> None:
    offset = 3.0
    now = T0 + timedelta(seconds=60 * 10 + 30)
    following = following_due(T0, 60, offset, T0, now)
    assert following == T0 + timedelta(seconds=offset + 60 * 10)
    assert following_due(T0, 60, offset, following, now) == following + timedelta(seconds=60)
