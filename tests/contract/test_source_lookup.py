"""Sources by id awaited on an event loop, held by every storage adapter: each lookup gets its
own answer however many are made at once, sees every change committed before it, and works on
any loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID, uuid4

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import SourceNotFound
from domain.sources import Source
from tests.builders import make_source
from tests.contract import strategies
from tests.contract.stores import FRESH_STORE_PER_EXAMPLE, SQL_ADAPTERS, StoreFactory, Stores

T = TypeVar("T")


def on_a_loop(stores: Stores, work: Callable[[], Awaitable[T]], *others: Stores) -> T:
    """Run `work` on a new event loop, then let go of what the store (and the `others` handles
    `work` used) hold on it."""

    async def main() -> T:
        try:
            return await work()
        finally:
            for each in (stores, *others):
                await each.store.release()

    return asyncio.run(main())


async def look_up_all(stores: Stores, ids: list[UUID]) -> list[Source | BaseException]:
    """Every id looked up at once, each by a task of its own, answers in order."""
    return await asyncio.gather(*(stores.sources.get(i) for i in ids), return_exceptions=True)


@FRESH_STORE_PER_EXAMPLE
@given(
    batch=strategies.source_batches(),
    missing=st.lists(st.uuids(), max_size=4),
    order=st.randoms(use_true_random=False),
    repeats=st.integers(min_value=1, max_value=3),
)
def test_lookups_made_at_once_each_get_their_own_answer(
    new_stores: StoreFactory,
    batch: list[Source],
    missing: list[UUID],
    order: object,
    repeats: int,
) -> None:
    with new_stores() as stores:
        for source in batch:
            stores.sources.add(source)
        stored = {s.id: s for s in batch}
        ids = [s.id for s in batch] * repeats + [i for i in missing if i not in stored]
        order.shuffle(ids)  # type: ignore[attr-defined]
        answers = on_a_loop(stores, lambda: look_up_all(stores, ids))
        for source_id, answer in zip(ids, answers, strict=True):
            if source_id in stored:
                assert answer == stores.sources.get(source_id) == stored[source_id]
            else:
                assert isinstance(answer, SourceNotFound)
                assert answer.source_id == source_id


def test_an_unknown_id_is_not_found(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        unknown = uuid4()
        with pytest.raises(SourceNotFound) as caught:
            on_a_loop(stores, lambda: stores.sources.get(unknown))
        assert caught.value.source_id == unknown


def test_a_lookup_sees_every_change_committed_before_it(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        lookup = stores.sources
        source = make_source("orders")

        async def work() -> None:
            await stores.sources.add(source)
            assert await lookup.get(source.id) == source
            changed = attrs.evolve(source, description="moved", version=source.version + 1)
            await stores.sources.update(changed, expected_version=source.version)
            assert await lookup.get(source.id) == changed
            await stores.sources.remove(source.id)
            with pytest.raises(SourceNotFound):
                await lookup.get(source.id)

        on_a_loop(stores, work)


def test_lookups_work_again_on_another_loop_after_release(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        stores.sources.add(source)
        for _ in range(3):
            assert on_a_loop(stores, lambda: stores.sources.get(source.id)) == source


@pytest.mark.parametrize("adapter", SQL_ADAPTERS)
def test_a_lookup_sees_what_another_handle_stored(new_stores: StoreFactory) -> None:
    with new_stores.shared(2) as (writer, reader):
        source = make_source("orders")

        async def work() -> Source:
            assert isinstance((await look_up_all(reader, [source.id]))[0], SourceNotFound)
            await writer.sources.add(source)
            return await reader.sources.get(source.id)

        assert on_a_loop(reader, work, writer) == source
