"""The SourceLookup contract, held by every storage adapter: the answers of `SourceRepository.get`,
awaited on an event loop, however many lookups are made at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID, uuid4

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.ports import SourceLookup
from domain.errors import SourceNotFound
from domain.sources import Source
from tests.builders import make_source
from tests.contract import strategies
from tests.contract.stores import FRESH_STORE_PER_EXAMPLE, SQL_ADAPTERS, StoreFactory

T = TypeVar("T")


def on_a_loop(lookup: SourceLookup, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` on a new event loop, then close what the lookup holds on it."""

    async def main() -> T:
        try:
            return await work()
        finally:
            await lookup.close()

    return asyncio.run(main())


async def look_up_all(lookup: SourceLookup, ids: list[UUID]) -> list[Source | BaseException]:
    """Every id looked up at once, each by a task of its own, answers in order."""
    return await asyncio.gather(*(lookup.get(i) for i in ids), return_exceptions=True)


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
        answers = on_a_loop(stores.lookup, lambda: look_up_all(stores.lookup, ids))
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
            on_a_loop(stores.lookup, lambda: stores.lookup.get(unknown))
        assert caught.value.source_id == unknown


def test_a_lookup_sees_every_change_committed_before_it(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        lookup = stores.lookup
        source = make_source("orders")

        async def work() -> None:
            stores.sources.add(source)
            assert await lookup.get(source.id) == source
            changed = attrs.evolve(source, description="moved", version=source.version + 1)
            stores.sources.update(changed, expected_version=source.version)
            assert await lookup.get(source.id) == changed
            stores.sources.remove(source.id)
            with pytest.raises(SourceNotFound):
                await lookup.get(source.id)

        on_a_loop(lookup, work)


def test_lookups_work_again_on_another_loop_after_close(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        stores.sources.add(source)
        for _ in range(3):
            assert on_a_loop(stores.lookup, lambda: stores.lookup.get(source.id)) == source


@pytest.mark.parametrize("adapter", SQL_ADAPTERS)
def test_a_lookup_sees_what_another_handle_stored(new_stores: StoreFactory) -> None:
    with new_stores.shared(2) as (writer, reader):
        source = make_source("orders")

        async def work() -> Source:
            assert isinstance((await look_up_all(reader.lookup, [source.id]))[0], SourceNotFound)
            writer.sources.add(source)
            return await reader.lookup.get(source.id)

        assert on_a_loop(reader.lookup, work) == source
