"""The SourceRepository contract, held by every storage adapter."""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID, uuid4

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from domain.errors import DuplicateSourceName, SourceNotFound, VersionMismatch
from domain.events import Action, Event, EventFilter, event_order
from domain.sources import (
    PageKey,
    Source,
    SourceFilter,
    SourcePage,
    SourceSummary,
    sort_key,
)
from tests.builders import T0, make_source
from tests.contract import strategies
from tests.contract.stores import FRESH_STORE_PER_EXAMPLE, SQL_ADAPTERS, StoreFactory
from tests.contract.threads import race


def all_pages(sources: Any, source_filter: SourceFilter, limit: int | None) -> list[SourcePage]:
    """Every page of a listing, following next keys to the end."""
    pages = [sources.list(source_filter, limit)]
    while pages[-1].next_key is not None:
        assert len(pages) <= 1000, "paging does not end"
        pages.append(sources.list(source_filter, limit, after=pages[-1].next_key))
    return pages


def listed(sources: Any, source_filter: SourceFilter | None = None) -> list[SourceSummary]:
    return list(sources.list(source_filter or SourceFilter()).sources)


def summaries(sources: Iterable[Source]) -> list[SourceSummary]:
    """What a listing of these sources shows."""
    return [SourceSummary.of(s) for s in sources]


@FRESH_STORE_PER_EXAMPLE
@given(batch=strategies.source_batches())
def test_stored_sources_read_back_exactly(new_stores: StoreFactory, batch: list[Source]) -> None:
    with new_stores() as stores:
        for source in batch:
            stores.sources.add(source)
        for source in batch:
            found = stores.sources.get(source.id)
            assert found == source
            assert dict(found.connection) == dict(source.connection)
            assert found.registered_at == source.registered_at
            assert found.registered_at.utcoffset() is not None
        assert listed(stores.sources) == summaries(sorted(batch, key=sort_key))


def test_a_source_keeps_the_largest_valid_fields(new_stores: StoreFactory) -> None:
    source = make_source(
        "n" * 100,
        description="d" * 500,
        tags=tuple(f"{i:03d}" + "t" * 97 for i in range(50)),
        connection={"nested": {"list": [1, 2.5, -0.0, 1e308, 2**70, None, True, "\x00\u2028😀"]}},
        registered_at=datetime(2026, 5, 1, 9, 30, 15, 123456, tzinfo=UTC),
    )
    with new_stores() as stores:
        stores.sources.add(source)
        assert stores.sources.get(source.id) == source


def test_a_version_past_32_bits_is_stored_and_compared(new_stores: StoreFactory) -> None:
    # Versions only grow: a store must not cap them at a 32-bit integer.
    source = make_source("orders", version=2**31 - 1)
    with new_stores() as stores:
        stores.sources.add(source)
        later = attrs.evolve(source, version=2**31, description="moved on")
        stores.sources.update(later, 2**31 - 1)
        assert stores.sources.get(source.id) == later
        with pytest.raises(VersionMismatch) as raised:
            stores.sources.update(attrs.evolve(later, version=2**31 + 2), 2**31 + 1)
        assert raised.value.current_version == 2**31
        stores.sources.remove(source.id, 2**31)
        with pytest.raises(SourceNotFound):
            stores.sources.get(source.id)


def test_a_taken_name_is_refused_and_the_first_source_kept(new_stores: StoreFactory) -> None:
    first = make_source("orders")
    with new_stores() as stores:
        stores.sources.add(first)
        with pytest.raises(DuplicateSourceName) as refused:
            stores.sources.add(make_source("orders", source_type="postgres"))
        assert refused.value.name == "orders"
        assert listed(stores.sources) == summaries([first])


def test_names_are_compared_exactly_once_in_nfc(new_stores: StoreFactory) -> None:
    names = ["orders", "Orders", "ORDERS", "orders ", "\u00e9t\u00e9"]
    with new_stores() as stores:
        for name in names:
            stores.sources.add(make_source(name))
        assert sorted(s.name for s in listed(stores.sources)) == sorted(names)
        # The same letters written decomposed are the same name.
        with pytest.raises(DuplicateSourceName):
            stores.sources.add(make_source("e\u0301te\u0301"))


def test_an_unknown_id_is_not_found(new_stores: StoreFactory) -> None:
    unknown = uuid4()
    with new_stores() as stores:
        stores.sources.add(make_source("orders"))
        with pytest.raises(SourceNotFound) as not_found:
            stores.sources.get(unknown)
        assert not_found.value.source_id == unknown
        with pytest.raises(SourceNotFound):
            stores.sources.remove(unknown)
        assert len(listed(stores.sources)) == 1


def test_a_removed_source_is_gone_and_its_name_free(new_stores: StoreFactory) -> None:
    source = make_source("orders")
    with new_stores() as stores:
        stores.sources.add(source)
        stores.sources.remove(source.id)
        with pytest.raises(SourceNotFound):
            stores.sources.get(source.id)
        with pytest.raises(SourceNotFound):
            stores.sources.remove(source.id)
        assert listed(stores.sources) == []
        again = make_source("orders")
        stores.sources.add(again)
        assert listed(stores.sources) == summaries([again])


def test_a_second_handle_sees_what_the_first_stored(new_stores: StoreFactory) -> None:
    source = make_source("orders")
    with new_stores.shared(2) as (first, second):
        first.sources.add(source)
        assert second.sources.get(source.id) == source
        second.sources.remove(source.id)
        with pytest.raises(SourceNotFound):
            first.sources.get(source.id)


def test_the_tag_filter_needs_every_tag(new_stores: StoreFactory) -> None:
    both = make_source("both", tags=("pii", "finance"))
    one = make_source("one", tags=("pii",), registered_at=T0 + timedelta(seconds=1))
    upper = make_source("upper", tags=("PII", "finance"), registered_at=T0 + timedelta(seconds=2))
    with new_stores() as stores:
        for source in (both, one, upper):
            stores.sources.add(source)
        assert listed(stores.sources, SourceFilter(tags=("pii",))) == summaries([both, one])
        assert listed(stores.sources, SourceFilter(tags=("pii", "finance"))) == summaries([both])
        assert listed(stores.sources, SourceFilter(tags=("finance", "pii", "pii"))) == summaries(
            [both]
        )
        assert listed(stores.sources, SourceFilter(tags=("pii", "eu"))) == []
        assert listed(stores.sources, SourceFilter(tags=("pi",))) == []


def test_the_type_filter_is_exact(new_stores: StoreFactory) -> None:
    csv = make_source("a")
    pg = make_source("b", source_type="postgres", registered_at=T0 + timedelta(seconds=1))
    with new_stores() as stores:
        stores.sources.add(csv)
        stores.sources.add(pg)
        assert listed(stores.sources, SourceFilter(source_type="postgres")) == summaries([pg])
        assert listed(stores.sources, SourceFilter(source_type="CSV")) == []
        assert listed(stores.sources, SourceFilter(source_type="csv", tags=("x",))) == []


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", ["50%_off", "50x_off", "Orders", "a_b", "aXb", "\u00e9t\u00e9", "\x00"]),
        ("50%", ["50%_off"]),
        ("50_", []),
        ("50%_off", ["50%_off"]),
        ("a_", ["a_b"]),
        ("A", []),
        ("orders", []),
        ("Orders", ["Orders"]),
        ("Orders!", []),
        ("e", []),
        ("\u00e9", ["\u00e9t\u00e9"]),
        ("\x00", []),
        ("\ud800", []),
    ],
)
def test_the_name_prefix_is_literal_and_case_sensitive(
    new_stores: StoreFactory, prefix: str, expected: list[str]
) -> None:
    names = ["50%_off", "50x_off", "Orders", "a_b", "aXb", "\u00e9t\u00e9"]
    with new_stores() as stores:
        for i, name in enumerate(names):
            stores.sources.add(make_source(name, registered_at=T0 + timedelta(seconds=i)))
        found = [s.name for s in listed(stores.sources, SourceFilter(name_prefix=prefix))]
        assert found == [name for name in expected if name in names]


def test_the_listing_is_oldest_first_then_by_id(new_stores: StoreFactory) -> None:
    # Ids that a signed, little-endian or textual comparison would put in another order.
    ids = [
        UUID(int=2**128 - 1),
        UUID(int=2**127),
        UUID(int=2**127 - 1),
        UUID(int=0x100),
        UUID(int=0xFF),
        UUID("0000000a-0000-0000-0000-000000000000"),
        UUID("00000009-ffff-ffff-ffff-ffffffffffff"),
        UUID(int=1),
    ]
    later = T0 + timedelta(microseconds=1)
    with new_stores() as stores:
        batch = [
            make_source(f"s{i}", id=source_id, registered_at=later if i % 3 == 0 else T0)
            for i, source_id in enumerate(ids)
        ]
        for source in batch:
            stores.sources.add(source)
        found = [s.id for s in listed(stores.sources)]
    assert found == [s.id for s in sorted(batch, key=sort_key)]
    assert found == [ids[i] for i in (7, 4, 5, 2, 1, 3, 6, 0)]


@FRESH_STORE_PER_EXAMPLE
@given(
    batch=strategies.source_batches(),
    source_filter=strategies.filters,
    limit=st.integers(min_value=1, max_value=5),
)
def test_pages_concatenate_to_the_whole_filtered_list(
    new_stores: StoreFactory, batch: list[Source], source_filter: SourceFilter, limit: int
) -> None:
    expected = sorted(filter(source_filter.matches, batch), key=sort_key)
    with new_stores() as stores:
        for source in batch:
            stores.sources.add(source)
        assert listed(stores.sources, source_filter) == summaries(expected)
        pages = all_pages(stores.sources, source_filter, limit)
    assert [s for p in pages for s in p.sources] == summaries(expected)
    assert len(pages) == max(1, math.ceil(len(expected) / limit))
    assert all(len(p.sources) == limit for p in pages[:-1])
    assert all(
        p.next_key == PageKey(p.sources[-1].registered_at, p.sources[-1].id) for p in pages[:-1]
    )


def test_a_page_that_reaches_the_end_has_no_next_key(new_stores: StoreFactory) -> None:
    batch = [make_source(f"s{i}", registered_at=T0 + timedelta(seconds=i)) for i in range(4)]
    with new_stores() as stores:
        for source in batch:
            stores.sources.add(source)
        first = stores.sources.list(SourceFilter(), limit=2)
        assert first.sources == tuple(summaries(batch[:2]))
        assert first.next_key is not None
        second = stores.sources.list(SourceFilter(), limit=2, after=first.next_key)
        assert second == SourcePage(tuple(summaries(batch[2:])))
        assert stores.sources.list(SourceFilter(), limit=4) == SourcePage(tuple(summaries(batch)))


@pytest.mark.parametrize("adapter", SQL_ADAPTERS)
def test_simultaneous_registrations_of_one_name_store_exactly_one(
    new_stores: StoreFactory,
) -> None:
    attempts = [make_source("orders") for _ in range(8)]
    with new_stores.shared(2) as handles:
        outcomes = race(len(attempts), lambda i: handles[i % 2].sources.add(attempts[i]))
        stored = listed(handles[0].sources)
    assert outcomes.count(None) == 1, outcomes
    assert all(isinstance(o, DuplicateSourceName) for o in outcomes if o is not None), outcomes
    assert stored == summaries([attempts[outcomes.index(None)]])


def test_simultaneous_registrations_on_one_handle_store_exactly_one(
    new_stores: StoreFactory,
) -> None:
    attempts = [make_source("orders") for _ in range(8)]
    with new_stores() as stores:
        outcomes = race(len(attempts), lambda i: stores.sources.add(attempts[i]))
        assert listed(stores.sources) == summaries([attempts[outcomes.index(None)]])
    assert outcomes.count(None) == 1, outcomes
    assert all(isinstance(o, DuplicateSourceName) for o in outcomes if o is not None), outcomes


def test_many_threads_registering_and_listing_at_once_all_succeed(
    new_stores: StoreFactory,
) -> None:
    per_thread = 15
    with new_stores() as stores:

        def register_and_list(i: int) -> None:
            for j in range(per_thread):
                source = make_source(f"s{i}-{j}", registered_at=T0 + timedelta(seconds=j))
                stores.sources.add(source)
                found = stores.sources.list(SourceFilter(name_prefix=f"s{i}-")).sources
                assert len(found) == j + 1

        outcomes = race(8, register_and_list)
        assert outcomes == [None] * 8
        assert len(listed(stores.sources)) == 8 * per_thread


_MACHINE_SOURCES = strategies.sources(
    names=st.sampled_from(strategies.NAME_POOL),
    tags=st.lists(st.sampled_from(strategies.TAG_POOL), max_size=3, unique=True),
    times=st.sampled_from(strategies.TIME_POOL),
)


class SourceRepositoryMachine(RuleBasedStateMachine):
    """Drives one store and a plain dict side by side: any difference breaks the contract.

    Every change carries an event; the trail must hold exactly the events of the changes made.
    """

    factory: ClassVar[StoreFactory]
    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self._resources = ExitStack()
        stores = self._resources.enter_context(self.factory())
        self.sources = stores.sources
        self.events = stores.events
        self.model: dict[UUID, Source] = {}
        self.trail: list[Event] = []

    def _event(self, action: Action, source: Source | UUID) -> Event:
        source_id = source if isinstance(source, UUID) else source.id
        name = None if isinstance(source, UUID) else source.name.value
        at = T0 + timedelta(microseconds=len(self.trail))
        return Event(uuid4(), at, "tdbk_machine", action, source_id, name, changed=("name",))

    def teardown(self) -> None:
        self._resources.close()

    @initialize(target=ids, batch=st.lists(_MACHINE_SOURCES, max_size=8))
    def add_several(self, batch: list[Source]) -> MultipleResults[UUID]:
        return multiple(*(self._add(source) for source in batch))

    @rule(target=ids, source=_MACHINE_SOURCES)
    def add(self, source: Source) -> UUID:
        return self._add(source)

    def _add(self, source: Source) -> UUID:
        assume(source.id not in self.model)
        event = self._event(Action.SOURCE_REGISTERED, source)
        if any(s.name == source.name for s in self.model.values()):
            with pytest.raises(DuplicateSourceName):
                self.sources.add(source, event)
        else:
            self.sources.add(source, event)
            self.model[source.id] = source
            self.trail.append(event)
        return source.id

    @rule(
        source_id=st.one_of(ids, st.uuids()),
        replacement=_MACHINE_SOURCES,
        stale=st.booleans(),
    )
    def update(self, source_id: UUID, replacement: Source, stale: bool) -> None:
        current = self.model.get(source_id)
        version = current.version if current is not None else 1
        expected = version + 1 if stale else version
        # What a change may touch: name, connection, description, tags (and the version).
        changed = attrs.evolve(
            current or replacement,
            name=replacement.name,
            connection=replacement.connection,
            description=replacement.description,
            tags=replacement.tags,
            version=expected + 1,
            updated_at=replacement.registered_at,
            updated_by="tdbk_updater",
        )
        event = self._event(Action.SOURCE_UPDATED, changed)
        if current is None:
            with pytest.raises(SourceNotFound):
                self.sources.update(changed, expected, event)
        elif stale:
            with pytest.raises(VersionMismatch) as raised:
                self.sources.update(changed, expected, event)
            assert raised.value.current_version == current.version
        elif any(s.name == changed.name and s.id != source_id for s in self.model.values()):
            with pytest.raises(DuplicateSourceName):
                self.sources.update(changed, expected, event)
        else:
            self.sources.update(changed, expected, event)
            self.model[source_id] = changed
            self.trail.append(event)

    @rule(source_id=st.one_of(ids, st.uuids()))
    def get(self, source_id: UUID) -> None:
        if source_id in self.model:
            assert self.sources.get(source_id) == self.model[source_id]
        else:
            with pytest.raises(SourceNotFound):
                self.sources.get(source_id)

    @rule()
    def count(self) -> None:
        assert self.sources.count() == len(self.model)

    @rule(source_id=st.one_of(ids, st.uuids()), condition=st.sampled_from(["none", "ok", "stale"]))
    def remove(self, source_id: UUID, condition: str) -> None:
        event = self._event(Action.SOURCE_DELETED, source_id)
        current = self.model.get(source_id)
        version = current.version if current is not None else 1
        expected = {"none": None, "ok": version, "stale": version + 1}[condition]
        if current is None:
            with pytest.raises(SourceNotFound):
                self.sources.remove(source_id, expected, event)
        elif condition == "stale":
            with pytest.raises(VersionMismatch) as raised:
                self.sources.remove(source_id, expected, event)
            assert raised.value.current_version == current.version
        else:
            self.sources.remove(source_id, expected, event)
            del self.model[source_id]
            # The store names the source in its deletion event.
            self.trail.append(attrs.evolve(event, source_name=current.name.value))

    @rule(source_filter=strategies.filters, limit=st.none() | st.integers(min_value=1, max_value=3))
    def list_every_page(self, source_filter: SourceFilter, limit: int | None) -> None:
        expected = sorted(filter(source_filter.matches, self.model.values()), key=sort_key)
        pages = all_pages(self.sources, source_filter, limit)
        assert [s for p in pages for s in p.sources] == summaries(expected)

    @invariant()
    def the_trail_holds_the_events_of_the_changes_made(self) -> None:
        assert self.events.list(EventFilter()).events == tuple(sorted(self.trail, key=event_order))


def test_sources_behave_like_a_dict(new_stores: StoreFactory) -> None:
    machine = type("Machine", (SourceRepositoryMachine,), {"factory": new_stores})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


def test_the_revision_moves_with_every_change_seen_from_any_handle(
    new_stores: StoreFactory,
) -> None:
    with new_stores.shared(2) as (first, second):
        if first.sources.revision() is None:
            pytest.skip("this store cannot tell: its listings are read every time")
        before = first.sources.revision()
        assert first.sources.revision() == before
        source = make_source("orders")
        second.sources.add(source)
        added = first.sources.revision()
        assert added != before
        first.sources.remove(source.id)
        assert first.sources.revision() not in (before, added)
