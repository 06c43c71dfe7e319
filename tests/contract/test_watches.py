"""The WatchRepository contract, held by every storage adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import attrs
import pytest

from domain.errors import SourceNotFound, WatchNotFound
from domain.events import Action, Event, EventFilter
from domain.watches import CheckOutcome, CheckResult, Claim, WatchKey, WatchStatus, new_watch
from tests.builders import make_source
from tests.contract.stores import SQL_ADAPTERS, StoreFactory, Stores
from tests.contract.threads import race

T0 = datetime(2026, 5, 1, 9, 30, 0, 123456, tzinfo=UTC)
LATER = T0 + timedelta(seconds=30)


def watched(stores: Stores, name: str, at: datetime = T0, interval: int = 60) -> UUID:
    source = make_source(name)
    stores.sources.add(source)
    stores.watches.put(new_watch(source.id, interval, at, "tdbk_admin"))
    return source.id


def test_a_watch_is_put_read_listed_and_removed(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source_id = watched(stores, "orders")
        watch = stores.watches.get(source_id)
        assert (watch.source_name, watch.interval_seconds, watch.status) == (
            "orders",
            60,
            WatchStatus.PENDING,
        )
        assert (watch.next_check_at, watch.anchor_at, watch.created_by) == (T0, T0, "tdbk_admin")
        assert [w.source_id for w in stores.watches.list(None, None).watches] == [source_id]
        stores.watches.remove(source_id)
        with pytest.raises(WatchNotFound):
            stores.watches.get(source_id)
        with pytest.raises(WatchNotFound):
            stores.watches.remove(source_id)


def test_a_watch_needs_its_source_and_goes_with_it(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        with pytest.raises(SourceNotFound):
            stores.watches.put(new_watch(uuid4(), 60, T0, "tdbk_admin"))
        source_id = watched(stores, "orders")
        kept = watched(stores, "kept")
        stores.sources.remove(source_id)
        with pytest.raises(WatchNotFound):
            stores.watches.get(source_id)
        assert [w.source_id for w in stores.watches.list(None, None).watches] == [kept]


def test_a_due_check_is_claimed_once_until_its_lease_passes(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source_id = watched(stores, "orders")
        assert stores.watches.claim(T0 - timedelta(seconds=1), LATER, 10) == []
        (claim,) = stores.watches.claim(T0, LATER, 10)
        assert (claim.watch.source_id, claim.due_at) == (source_id, T0)
        assert stores.watches.claim(T0 + timedelta(seconds=29), LATER, 10) == []
        (again,) = stores.watches.claim(LATER, LATER + timedelta(seconds=30), 10)
        assert again.token != claim.token
        # The first holder's lease has passed: its result is not recorded.
        result = CheckResult(LATER, CheckOutcome.UNCHANGED)
        assert not stores.watches.complete(claim, result, T0 + timedelta(seconds=60), [])
        assert stores.watches.complete(again, result, T0 + timedelta(seconds=60), [])
        watch = stores.watches.get(source_id)
        assert (watch.status, watch.next_check_at, watch.last_checked_at) == (
            WatchStatus.OK,
            T0 + timedelta(seconds=60),
            LATER,
        )


def test_claims_take_the_soonest_first_up_to_the_limit(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        ids = [watched(stores, f"s{i}", at=T0 + timedelta(seconds=i)) for i in range(5)]
        first = stores.watches.claim(LATER, LATER + timedelta(seconds=60), 3)
        assert [c.watch.source_id for c in first] == ids[:3]
        rest = stores.watches.claim(LATER, LATER + timedelta(seconds=60), 10)
        assert [c.watch.source_id for c in rest] == ids[3:]


def test_failures_count_up_and_a_success_resets_them_with_events(
    new_stores: StoreFactory,
) -> None:
    with new_stores() as stores:
        source_id = watched(stores, "orders")
        at = T0
        for expected in (1, 2):
            (claim,) = stores.watches.claim(at, at + timedelta(seconds=60), 1)
            failed = CheckResult(at, CheckOutcome.FAILED, "unreachable")
            at = at + timedelta(seconds=60)
            assert stores.watches.complete(claim, failed, at, [])
            watch = stores.watches.get(source_id)
            assert (watch.status, watch.consecutive_failures, watch.last_reason) == (
                WatchStatus.FAILING,
                expected,
                "unreachable",
            )
        (claim,) = stores.watches.claim(at, at + timedelta(seconds=60), 1)
        event = Event(uuid4(), at, "tdb-watch", Action.SOURCE_CHECK_RECOVERED, source_id, "orders")
        assert stores.watches.complete(claim, CheckResult(at, "changed"), at, [event])
        assert stores.watches.get(source_id).consecutive_failures == 0
        recorded = stores.events.list(EventFilter(action=Action.SOURCE_CHECK_RECOVERED)).events
        assert recorded == (event,)


def test_the_status_filter_and_paging(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        ids = [watched(stores, f"s{i}", at=T0 + timedelta(seconds=i)) for i in range(4)]
        (claim,) = stores.watches.claim(T0, LATER, 1)
        done = CheckResult(T0, CheckOutcome.FAILED, "timeout")
        assert stores.watches.complete(claim, done, T0 + timedelta(hours=1), [])
        failing = stores.watches.list(WatchStatus.FAILING, None).watches
        assert [w.source_id for w in failing] == [ids[0]]
        pending = stores.watches.list(WatchStatus.PENDING, None).watches
        assert [w.source_id for w in pending] == ids[1:]
        assert stores.watches.list(WatchStatus.OK, None).watches == ()
        page = stores.watches.list(None, 2)
        assert [w.source_id for w in page.watches] == ids[1:3]
        assert page.next_key == WatchKey(T0 + timedelta(seconds=2), ids[2])
        last = stores.watches.list(None, 2, page.next_key)
        assert [w.source_id for w in last.watches] == [ids[3], ids[0]]
        assert last.next_key is None


def test_a_new_connection_makes_the_check_due_at_once(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        stores.sources.add(source)
        stores.watches.put(new_watch(source.id, 3600, T0, "tdbk_admin"))
        (claim,) = stores.watches.claim(T0, LATER, 1)
        stores.watches.complete(claim, CheckResult(T0, "unchanged"), T0 + timedelta(hours=1), [])
        described = attrs.evolve(source, description="nightly", version=2, updated_at=LATER)
        stores.sources.update(described, 1)
        assert stores.watches.get(source.id).next_check_at == T0 + timedelta(hours=1)
        moved_at = LATER + timedelta(seconds=5)
        moved = attrs.evolve(
            described, connection={"path": "elsewhere.csv"}, version=3, updated_at=moved_at
        )
        stores.sources.update(moved, 2)
        watch = stores.watches.get(source.id)
        assert (watch.next_check_at, watch.anchor_at) == (moved_at, moved_at)


def test_a_check_made_due_meanwhile_stays_due(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        stores.sources.add(source)
        stores.watches.put(new_watch(source.id, 3600, T0, "tdbk_admin"))
        (claim,) = stores.watches.claim(T0, LATER, 1)
        moved = attrs.evolve(source, connection={"path": "b.csv"}, version=2, updated_at=LATER)
        stores.sources.update(moved, 1)
        assert stores.watches.complete(
            claim, CheckResult(LATER, "unchanged"), T0 + timedelta(hours=1), []
        )
        assert stores.watches.get(source.id).next_check_at == LATER


def test_a_replaced_watch_starts_over_and_drops_the_lease(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source_id = watched(stores, "orders")
        (claim,) = stores.watches.claim(T0, LATER, 1)
        stores.watches.put(new_watch(source_id, 120, LATER, "tdbk_other"))
        assert not stores.watches.complete(claim, CheckResult(LATER, "unchanged"), LATER, [])
        watch = stores.watches.get(source_id)
        assert (watch.interval_seconds, watch.status, watch.created_by) == (
            120,
            WatchStatus.PENDING,
            "tdbk_other",
        )
        assert [c.watch.source_id for c in stores.watches.claim(LATER, LATER, 1)] == [source_id]


def test_overdue_counts_due_checks_that_no_lease_holds(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        for i in range(3):
            watched(stores, f"s{i}")
        stores.watches.claim(T0, T0 + timedelta(minutes=5), 1)
        now = T0 + timedelta(minutes=2)
        assert stores.watches.overdue(now - timedelta(minutes=1), now) == 2
        assert stores.watches.overdue(T0, now) == 0


@pytest.mark.parametrize("adapter", SQL_ADAPTERS)
def test_two_handles_never_claim_one_check_twice(new_stores: StoreFactory) -> None:
    with new_stores.shared(2) as (one, other):
        ids = {watched(one, f"s{i}") for i in range(40)}
        claimed: list[Claim] = []

        def attempt(i: int) -> None:
            handle = one if i % 2 else other
            for _ in range(3):
                claimed.extend(handle.watches.claim(LATER, LATER + timedelta(minutes=1), 3))

        assert race(8, attempt) == [None] * 8
        assert len(claimed) == len(ids) == len({c.watch.source_id for c in claimed})
