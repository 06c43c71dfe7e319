"""Sources added and changed awaited on an event loop, held by every storage adapter: what
`SourceRepository.add` and `update` do however many writes are made at once, and a write that
has begun ends even if its caller is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import attrs
import pytest
from hypothesis import given

from application.ports import SourceRepository
from domain.errors import DuplicateSourceName, SourceNotFound, VersionMismatch
from domain.events import Action
from domain.sources import Source, SourceName
from tests.builders import T0, make_source
from tests.contract import strategies
from tests.contract.stores import FRESH_STORE_PER_EXAMPLE, StoreFactory, Stores
from tests.contract.test_lifecycle import event, trail

T = TypeVar("T")


def on_a_loop(stores: Stores, work: Callable[[SourceRepository], Awaitable[T]]) -> T:
    """Run `work` on a new event loop, then wait for the writes begun on it and let go of what
    the store holds there."""

    async def main() -> T:
        try:
            return await work(stores.sources)
        finally:
            await stores.store.release()

    return asyncio.run(main())


@FRESH_STORE_PER_EXAMPLE
@given(batch=strategies.source_batches())
def test_adds_made_at_once_each_store_their_source_and_event(
    new_stores: StoreFactory, batch: list[Source]
) -> None:
    with new_stores() as stores:
        registered = {s.id: event(Action.SOURCE_REGISTERED, s) for s in batch}

        async def add_all(writes: SourceRepository) -> list[None]:
            return await asyncio.gather(*(writes.add(s, registered[s.id]) for s in batch))

        on_a_loop(stores, add_all)
        for source in batch:
            assert stores.sources.get(source.id) == source
        assert sorted(trail(stores.events), key=lambda e: str(e.id)) == sorted(
            registered.values(), key=lambda e: str(e.id)
        )


def test_an_add_without_an_event_stores_the_source_alone(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source = make_source("orders", description="Order records", tags=("finance",))
        on_a_loop(stores, lambda writes: writes.add(source))
        assert stores.sources.get(source.id) == source
        assert trail(stores.events) == []


def test_a_name_taken_is_a_duplicate_and_records_nothing(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        stores.sources.add(make_source("orders"))
        late = make_source("orders")
        registered = event(Action.SOURCE_REGISTERED, late)
        with pytest.raises(DuplicateSourceName) as caught:
            on_a_loop(stores, lambda writes: writes.add(late, registered))
        assert caught.value.name == "orders"
        with pytest.raises(SourceNotFound):
            stores.sources.get(late.id)
        assert trail(stores.events) == []


def test_of_adds_of_one_name_at_once_exactly_one_wins(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        rivals = [make_source("orders", description=f"rival {i}") for i in range(6)]

        async def add_all(writes: SourceRepository) -> list[BaseException | None]:
            adds = (writes.add(s, event(Action.SOURCE_REGISTERED, s)) for s in rivals)
            return await asyncio.gather(*adds, return_exceptions=True)

        outcomes = on_a_loop(stores, add_all)
        winners = [s for s, outcome in zip(rivals, outcomes, strict=True) if outcome is None]
        assert len(winners) == 1
        assert all(isinstance(o, DuplicateSourceName) for o in outcomes if o is not None)
        assert stores.sources.get(winners[0].id) == winners[0]
        assert [e.source_id for e in trail(stores.events)] == [winners[0].id]


def test_an_add_whose_caller_is_cancelled_still_ends(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        registered = event(Action.SOURCE_REGISTERED, source)

        async def cancelled(writes: SourceRepository) -> bool:
            adding = asyncio.ensure_future(writes.add(source, registered))
            await asyncio.sleep(0)  # one turn of the loop: the add has begun
            adding.cancel()
            try:
                await adding
            except asyncio.CancelledError:
                return True
            return False  # it had already ended (a store whose writes never wait)

        on_a_loop(stores, cancelled)  # its `release` waits for the add
        assert stores.sources.get(source.id) == source
        assert trail(stores.events) == [registered]


def test_an_add_is_seen_by_the_next_lookup(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        renamed = attrs.evolve(make_source("other"), name=SourceName("orders-2"))

        async def work(writes: SourceRepository) -> tuple[Source, Source]:
            await writes.add(source)
            await writes.add(renamed)
            return await stores.sources.get(source.id), await stores.sources.get(renamed.id)

        assert on_a_loop(stores, work) == (source, renamed)


def changed(source: Source, version: int, **fields: Any) -> Source:
    return attrs.evolve(
        source, version=version, updated_at=T0 + timedelta(seconds=version), **fields
    )


def test_a_change_at_the_expected_version_is_stored_with_its_event(
    new_stores: StoreFactory,
) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        stores.sources.add(source)
        second = changed(source, 2, name=SourceName("orders-2"), tags=("pii",))
        updated = event(Action.SOURCE_UPDATED, second, changed=("name", "tags"))
        on_a_loop(stores, lambda writes: writes.update(second, 1, updated))
        assert stores.sources.get(source.id) == second
        assert trail(stores.events) == [updated]


def test_a_change_at_another_version_or_of_no_source_stores_nothing(
    new_stores: StoreFactory,
) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        stores.sources.add(source)
        stores.sources.update(changed(source, 2), 1)
        late = changed(source, 2, description="late")
        with pytest.raises(VersionMismatch) as caught:
            on_a_loop(stores, lambda writes: writes.update(late, 1, event(Action.SOURCE_UPDATED)))
        assert caught.value.current_version == 2
        ghost = make_source("ghost", version=2)
        with pytest.raises(SourceNotFound):
            on_a_loop(stores, lambda writes: writes.update(ghost, 1, event(Action.SOURCE_UPDATED)))
        assert stores.sources.get(source.id) == changed(source, 2)
        assert trail(stores.events) == []


def test_a_change_to_a_name_taken_is_a_duplicate(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source, other = make_source("orders"), make_source("other")
        stores.sources.add(source)
        stores.sources.add(other)
        taking = changed(other, 2, name=SourceName("orders"))
        with pytest.raises(DuplicateSourceName):
            on_a_loop(stores, lambda writes: writes.update(taking, 1, event(Action.SOURCE_UPDATED)))
        assert stores.sources.get(other.id) == other


def test_of_changes_from_one_version_at_once_exactly_one_wins(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        stores.sources.add(source)
        rivals = [changed(source, 2, description=f"rival {i}") for i in range(6)]

        async def update_all(writes: SourceRepository) -> list[BaseException | None]:
            updates = (writes.update(r, 1, event(Action.SOURCE_UPDATED, r)) for r in rivals)
            return await asyncio.gather(*updates, return_exceptions=True)

        outcomes = on_a_loop(stores, update_all)
        winners = [r for r, outcome in zip(rivals, outcomes, strict=True) if outcome is None]
        assert len(winners) == 1
        assert all(isinstance(o, VersionMismatch) for o in outcomes if o is not None)
        assert stores.sources.get(source.id) == winners[0]
        assert len(trail(stores.events)) == 1


def test_a_change_whose_caller_is_cancelled_still_ends(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        stores.sources.add(source)
        second = changed(source, 2, description="moved")
        updated = event(Action.SOURCE_UPDATED, second, changed=("description",))

        async def cancelled(writes: SourceRepository) -> None:
            updating = asyncio.ensure_future(writes.update(second, 1, updated))
            await asyncio.sleep(0)  # one turn of the loop: the change has begun
            updating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await updating

        on_a_loop(stores, cancelled)  # its `release` waits for the change
        assert stores.sources.get(source.id) == second
        assert trail(stores.events) == [updated]
