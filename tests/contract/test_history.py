"""The SnapshotRepository contract, held by every storage adapter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import SourceNotFound
from domain.events import Action, Event, EventFilter, event_order
from domain.history import SchemaSnapshot, SnapshotHead, fingerprint
from domain.sources import Column
from tests.builders import make_source
from tests.contract.stores import StoreFactory, Stores
from tests.contract.threads import race

T0 = datetime(2026, 5, 1, 9, 30, 0, 123456, tzinfo=UTC)

names = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12
) | st.sampled_from(["id", "total", "created_at"])
columns_strategy = st.lists(
    st.builds(
        Column,
        name=names,
        type=st.sampled_from(["integer", "text", "timestamp with time zone"]),
        nullable=st.sampled_from([None, True, False]),
    ),
    max_size=6,
    unique_by=lambda c: c.name,
).map(tuple)


def snapshot(source_id: UUID, sequence: int, columns: tuple[Column, ...]) -> SchemaSnapshot:
    return SchemaSnapshot(
        source_id=source_id,
        sequence=sequence,
        fingerprint=fingerprint(columns),
        columns=columns,
        observed_at=T0 + timedelta(seconds=sequence),
    )


A = (Column("id", "integer", False), Column("total", "numeric", True))
B = (Column("id", "integer", False), Column("total", "numeric", True), Column("note", "text"))


def registered(stores: Stores, name: str = "orders") -> UUID:
    source = make_source(name)
    stores.sources.add(source)
    return source.id


def test_a_source_without_snapshots_has_no_head_and_no_history(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source_id = registered(stores)
        assert stores.history.head(source_id) is None
        assert stores.history.latest(source_id) is None
        assert list(stores.history.newest_first(source_id, 10)) == []


def test_snapshots_are_appended_in_sequence_only(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source_id = registered(stores)
        first, second = snapshot(source_id, 1, A), snapshot(source_id, 2, B)
        assert not stores.history.append(snapshot(source_id, 2, A))  # nothing to follow
        assert stores.history.append(first)
        assert not stores.history.append(snapshot(source_id, 1, B))  # 1 is taken
        assert not stores.history.append(snapshot(source_id, 3, B))  # 2 is missing
        assert stores.history.append(second)
        assert stores.history.head(source_id) == SnapshotHead(2, fingerprint(B))
        assert stores.history.latest(source_id) == second
        assert list(stores.history.newest_first(source_id, 10)) == [second, first]
        assert list(stores.history.newest_first(source_id, 1)) == [second]
        assert list(stores.history.newest_first(source_id, 10, before=2)) == [first]
        assert list(stores.history.newest_first(source_id, 10, before=1)) == []


def test_an_unknown_source_gets_no_snapshot(new_stores: StoreFactory) -> None:
    with new_stores() as stores, pytest.raises(SourceNotFound):
        stores.history.append(snapshot(uuid4(), 1, A))


def test_removing_a_source_removes_its_history_and_no_other(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        doomed = make_source("doomed")
        stores.sources.add(doomed)
        kept = registered(stores, "kept")
        assert stores.history.append(snapshot(doomed.id, 1, A))
        assert stores.history.append(snapshot(kept, 1, B))
        stores.sources.remove(doomed.id)
        assert stores.history.head(doomed.id) is None
        assert list(stores.history.newest_first(doomed.id, 10)) == []
        with pytest.raises(SourceNotFound):
            stores.history.append(snapshot(doomed.id, 1, A))
        # The same record again starts a history of its own.
        stores.sources.add(doomed)
        assert stores.history.head(doomed.id) is None
        assert stores.history.head(kept) == SnapshotHead(1, fingerprint(B))


def test_the_store_keeps_what_a_list_per_source_keeps(new_stores: StoreFactory) -> None:
    # One store for every example: each example's two sources are new, and so are their histories.
    with new_stores() as stores:

        @given(
            st.lists(st.tuples(st.integers(0, 1), st.integers(-1, 2), columns_strategy), max_size=8)
        )
        def check(steps: list[tuple[int, int, tuple[Column, ...]]]) -> None:
            ids = [registered(stores, f"{n}-{uuid4()}") for n in ("one", "two")]
            model: dict[UUID, list[SchemaSnapshot]] = {i: [] for i in ids}
            for which, offset, columns in steps:
                source_id = ids[which]
                wanted = snapshot(source_id, max(1, len(model[source_id]) + offset), columns)
                expected = wanted.sequence == len(model[source_id]) + 1
                assert stores.history.append(wanted) == expected
                if expected:
                    model[source_id].append(wanted)
            for source_id, kept in model.items():
                assert list(stores.history.newest_first(source_id, 100)) == kept[::-1]
                head = stores.history.head(source_id)
                assert head == (SnapshotHead(len(kept), kept[-1].fingerprint) if kept else None)

        check()


def test_of_racing_appends_after_one_snapshot_exactly_one_is_stored(
    new_stores: StoreFactory,
) -> None:
    with new_stores.shared(4) as handles:
        source_id = registered(handles[0])
        assert handles[0].history.append(snapshot(source_id, 1, A))
        variants = [(*B, Column(f"c{i}", "text")) for i in range(12)]
        stored: list[int] = []

        def attempt(i: int) -> None:
            if handles[i % 4].history.append(snapshot(source_id, 2, variants[i])):
                stored.append(i)

        assert race(12, attempt) == [None] * 12
        assert len(stored) == 1
        newest = handles[1].history.newest_first(source_id, 10)
        assert [s.fingerprint for s in newest] == [fingerprint(variants[stored[0]]), fingerprint(A)]


def schema_event(source_id: UUID, breaking: bool) -> Event:
    return Event(
        id=uuid4(),
        at=T0,
        actor="tdbk_0123456789abcdef",
        action=Action.SOURCE_SCHEMA_CHANGED,
        source_id=source_id,
        source_name="orders",
        breaking=breaking,
    )


def test_a_snapshot_and_its_event_are_stored_together_or_not_at_all(
    new_stores: StoreFactory,
) -> None:
    with new_stores() as stores:
        source_id = registered(stores)
        first = schema_event(source_id, False)
        assert stores.history.append(snapshot(source_id, 1, A), first)
        assert not stores.history.append(snapshot(source_id, 1, B), schema_event(source_id, True))
        assert not stores.history.append(snapshot(source_id, 3, B), schema_event(source_id, True))
        second = schema_event(source_id, True)
        assert stores.history.append(snapshot(source_id, 2, B), second)
        trail = stores.events.list(EventFilter(action=Action.SOURCE_SCHEMA_CHANGED)).events
        assert list(trail) == sorted([first, second], key=event_order)
        with pytest.raises(SourceNotFound):
            stores.history.append(snapshot(uuid4(), 1, A), schema_event(source_id, False))
        assert len(stores.events.list(EventFilter(source_id=source_id)).events) == 2
