"""The Store contract: migrations, health and connection usage, held by every storage adapter."""

from __future__ import annotations

from uuid import uuid4

import pytest

from adapters.storage.postgres import (
    PostgresDatabase,
)
from adapters.storage.sqlite import SqliteDatabase
from domain.errors import StoreUnavailable
from domain.sources import SourceFilter
from tests.builders import make_source
from tests.contract.stores import SQL_ADAPTERS, StoreFactory
from tests.contract.threads import race
from tests.helpers import run


def test_upgrade_applies_each_version_once(new_stores: StoreFactory) -> None:
    with new_stores(upgraded=False) as stores:
        assert stores.store.upgrade() == list(new_stores.versions)
        assert stores.store.upgrade() == []
        stores.store.ping()
        source = make_source("orders")
        stores.sources.add(source)
        assert stores.store.upgrade() == []
        assert stores.sources.get(source.id) == source


def test_simultaneous_upgrades_apply_each_version_once(new_stores: StoreFactory) -> None:
    applied: list[int] = []
    with new_stores.shared(4, upgraded=False) as handles:
        outcomes = race(len(handles), lambda i: applied.extend(handles[i].store.upgrade()))
        handles[3].sources.add(make_source("orders"))
        assert len(handles[0].sources.list(SourceFilter()).sources) == 1
    assert outcomes == [None] * 4
    assert sorted(applied) == list(new_stores.versions)


def test_a_ready_store_answers_ping(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        # Several callers at once: each gets an answer, none an exception.
        assert race(4, lambda _: stores.store.ping()) == [None] * 4


def test_usage_counts_the_connections_open_and_in_use(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        stores.sources.list(SourceFilter())
        open_, in_use = stores.store.usage()
        assert in_use == 0
        assert open_ >= 0


@pytest.mark.parametrize("adapter", SQL_ADAPTERS)
def test_a_connection_lent_out_is_in_use(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        store = stores.store.target
        assert isinstance(store, SqliteDatabase | PostgresDatabase)
        if isinstance(store, SqliteDatabase):
            with store.writing():
                open_, in_use = store.usage()
        else:

            async def lent() -> tuple[int, int]:
                async with store.transaction():
                    return store.usage()

            open_, in_use = run(lent())
        assert in_use == 1
        assert open_ >= 1
        assert store.usage()[1] == 0


@pytest.mark.parametrize("adapter", SQL_ADAPTERS)
def test_a_store_without_its_schema_is_unavailable(new_stores: StoreFactory) -> None:
    with new_stores(upgraded=False) as stores:
        with pytest.raises(StoreUnavailable):
            stores.sources.get(uuid4())
        with pytest.raises(StoreUnavailable):
            stores.sources.add(make_source("orders"))
        with pytest.raises(StoreUnavailable):
            stores.keys.list()
