"""A kept listing is made once for everyone who asks while it is being made; a failure reaches
them all, and a maker that gives up hands the making to one of those waiting. Encoded in
batches, a listing is the same bytes as encoded at once."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import StoreUnavailable
from entrypoints.http.sources import Listing, ListingCache, json_array

LISTING: Listing = (None, b"[]")


class Maker:
    """Makes the listing when released; counts how often it was asked to."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = fail

    async def __call__(self) -> Listing:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise StoreUnavailable("the store is down")
        return LISTING


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_asked_at_once_it_is_made_once() -> None:
    async def run() -> None:
        cache, make = ListingCache(), Maker()
        asking = [asyncio.create_task(cache.get_or_make("k", make)) for _ in range(4)]
        await _settle()
        make.release.set()
        assert await asyncio.gather(*asking) == [LISTING] * 4
        assert await cache.get_or_make("k", make) == LISTING
        assert make.calls == 1

    asyncio.run(run())


def test_a_failure_reaches_everyone_waiting_and_the_next_ask_makes_it_anew() -> None:
    async def run() -> None:
        cache, failing = ListingCache(), Maker(fail=True)
        asking = [asyncio.create_task(cache.get_or_make("k", failing)) for _ in range(3)]
        await _settle()
        failing.release.set()
        results: list[Any] = await asyncio.gather(*asking, return_exceptions=True)
        assert [type(r) for r in results] == [StoreUnavailable] * 3
        assert failing.calls == 1
        working = Maker()
        working.release.set()
        assert await cache.get_or_make("k", working) == LISTING
        assert working.calls == 1

    asyncio.run(run())


def test_when_the_maker_is_cancelled_one_of_those_waiting_makes_it() -> None:
    async def run() -> None:
        cache, abandoned, other = ListingCache(), Maker(), Maker()
        first = asyncio.create_task(cache.get_or_make("k", abandoned))
        await _settle()
        waiting = [asyncio.create_task(cache.get_or_make("k", other)) for _ in range(2)]
        await _settle()
        first.cancel()
        await _settle()
        other.release.set()
        assert await asyncio.gather(*waiting) == [LISTING] * 2
        with pytest.raises(asyncio.CancelledError):
            await first
        assert (abandoned.calls, other.calls) == (1, 1)

    asyncio.run(run())


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


@given(items=st.lists(JSON_VALUES, max_size=30), batch=st.integers(min_value=1, max_value=8))
def test_a_listing_encoded_in_batches_is_the_same_bytes(items: list[Any], batch: int) -> None:
    assert json_array(items, batch) == msgspec.json.encode(items)


def test_the_kept_listings_stay_within_their_bytes() -> None:
    cache = ListingCache(max_bytes=100)
    for i in range(10):
        cache.put(i, (None, b"x" * 30))
        assert cache.kept_bytes <= 100
    assert [cache.get(i) is not None for i in range(10)] == [False] * 7 + [True] * 3
    cache.put("big", (None, b"x" * 101))  # bigger than the bound: not kept, nothing evicted
    assert cache.get("big") is None
    assert cache.kept_bytes == 90
    cache.put(9, (None, b"y" * 10))  # replaced: counted once
    assert cache.kept_bytes == 70
