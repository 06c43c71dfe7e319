"""Listings from indexes: every filter, page size and cursor answers as the reference semantics
say, whichever index the store walks (a window, or the rarest filter after counting); the whole
listing read in chunks equals the listing; the kept count equals the sources held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator, Sequence
from datetime import timedelta
from typing import Any

import attrs
import pytest

from adapters.storage import source_query
from domain.sources import PageKey, Source, SourceFilter, SourceSummary, sort_key
from tests.builders import T0, make_source
from tests.contract.stores import StoreFactory, Stores
from tests.helpers import run

NAMES = ("a", "ab", "abc", "b", "\ud7ff", "\ud7ff\ue000", "\U0010ffff", "\U0010ffffz", "zz")
TAGS = (("x",), ("x", "y"), ("y",), (), ("x", "z"))


def _corpus() -> list[Source]:
    """40 sources: names sharing prefixes (and the highest code points), tags, both types, and
    registration times with ties (broken by id)."""
    return [
        make_source(
            f"{NAMES[i % len(NAMES)]}{i:02d}",
            tags=TAGS[i % len(TAGS)],
            source_type="postgres" if i % 3 else "csv",
            registered_at=T0 + timedelta(seconds=i // 2),
        )
        for i in range(40)
    ]


@pytest.fixture(params=["windows", "counts"])
def choosing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """`windows`: pages found by the first walk; `counts`: windows of one page and a count of
    three, so that pages come from the rarest filter's index (the million's path, on 40)."""
    if request.param == "counts":
        monkeypatch.setattr(source_query, "WINDOW_MIN", 0)
        monkeypatch.setattr(source_query, "WINDOW_PER_ROW", 1)
        monkeypatch.setattr(source_query, "PROBE_MAX", 3)
    return str(request.param)


@pytest.fixture
def held(new_stores: StoreFactory) -> Iterator[tuple[Stores, list[Source]]]:
    """A store of the corpus after some changes of tags and some removals."""
    sources = _corpus()
    with new_stores() as stores:
        for source in sources:
            stores.sources.add(source)
        for i in (1, 6, 11):
            retagged = attrs.evolve(sources[i], tags=("z", "w"), version=2)
            stores.sources.update(retagged, 1)
            sources[i] = retagged
        for i in (4, 9, 33):
            stores.sources.remove(sources[i].id)
        yield stores, [s for i, s in enumerate(sources) if i not in (4, 9, 33)]


FILTERS = [
    SourceFilter(tags=tags, source_type=kind, name_prefix=prefix)
    for tags in ((), ("x",), ("x", "y"), ("z", "w"), ("nobody",))
    for kind in (None, "csv")
    for prefix in (None, "a", "ab", "\ud7ff", "\U0010ffff", "q")
]


def _paged(stores: Stores, source_filter: SourceFilter, limit: int) -> list[SourceSummary]:
    found: list[SourceSummary] = []
    after: PageKey | None = None
    while True:
        page = stores.sources.list(source_filter, limit, after)
        assert len(page.sources) <= limit
        found += page.sources
        if page.next_key is None:
            return found
        after = page.next_key


def test_every_filter_and_page_follows_the_reference(
    held: tuple[Stores, list[Source]], choosing: str
) -> None:
    stores, sources = held
    for source_filter in FILTERS:
        expected = [SourceSummary.of(s) for s in sorted(sources, key=sort_key)]
        expected = [
            s
            for s, full in zip(expected, sorted(sources, key=sort_key), strict=True)
            if source_filter.matches(full)
        ]
        assert stores.sources.list(source_filter).sources == tuple(expected), source_filter
        for limit in (2, 5):
            assert _paged(stores, source_filter, limit) == expected, (source_filter, limit)


async def _drained(chunks: AsyncGenerator[Sequence[SourceSummary], None]) -> list[list[Any]]:
    return [list(chunk) async for chunk in chunks]


def test_the_whole_listing_in_chunks_is_the_listing(held: tuple[Stores, list[Source]]) -> None:
    stores, _ = held
    for source_filter in FILTERS[:: len(FILTERS) // 12]:
        chunks = run(_drained(stores.sources.target.chunks(source_filter, 4)))
        assert all(0 < len(chunk) <= 4 for chunk in chunks)
        listed = stores.sources.list(source_filter).sources
        assert [s for chunk in chunks for s in chunk] == list(listed), source_filter


def test_a_whole_listing_left_early_lets_the_store_go(held: tuple[Stores, list[Source]]) -> None:
    stores, sources = held

    async def first_of_each() -> None:
        for _ in range(20):  # more than any pool has connections, were they not given back
            chunks = stores.sources.target.chunks(SourceFilter(), 3)
            assert len(await anext(chunks)) == 3
            await chunks.aclose()

    run(first_of_each())
    assert len(stores.sources.list(SourceFilter()).sources) == len(sources)


def test_the_kept_count_follows_adds_removals_and_concurrent_writes(
    new_stores: StoreFactory,
) -> None:
    with new_stores.shared(2) as (one, other):
        assert one.sources.count() == 0
        batch = [make_source(f"s{i}", tags=("t",)) for i in range(30)]

        async def concurrently() -> None:
            handles = (one.sources.target, other.sources.target)
            await asyncio.gather(*(handles[i % 2].add(s) for i, s in enumerate(batch)))
            await asyncio.gather(*(handles[i % 2].remove(s.id) for i, s in enumerate(batch[:11])))

        run(concurrently())
        held = len(one.sources.list(SourceFilter()).sources)
        assert held == 19
        assert one.sources.count() == other.sources.count() == held
        assert len(one.sources.list(SourceFilter(tags=("t",))).sources) == held
