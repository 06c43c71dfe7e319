"""How each real store fails when it cannot answer: fast, as `StoreUnavailable`, and recovers."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import psycopg
import pytest

from adapters.storage.postgres import (
    PostgresApiKeyRepository,
    PostgresDatabase,
    PostgresSourceRepository,
)
from adapters.storage.sqlite import SqliteApiKeyRepository, SqliteDatabase, SqliteSourceRepository
from domain.errors import StoreUnavailable
from domain.sources import Source, SourceFilter
from tests.builders import make_key, make_source
from tests.contract.relay import TcpRelay
from tests.contract.stores import PostgresStores
from tests.helpers import Synced


@pytest.fixture
def postgres_stores(postgres_url: str) -> Iterator[PostgresStores]:
    """PostgreSQL stores for the tests that only make sense against a server."""
    factory = PostgresStores(postgres_url)
    yield factory
    factory.close()


def assert_unavailable_within(seconds: float, *calls: Callable[[], object]) -> None:
    """Each call raises `StoreUnavailable`, and does so in time."""
    for call in calls:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            call()
        assert time.monotonic() - started < seconds


def sqlite_calls(db: Any) -> list[Callable[[], object]]:
    sources, keys = Synced(SqliteSourceRepository(db)), Synced(SqliteApiKeyRepository(db))
    return [
        db.ping,
        db.upgrade,
        lambda: sources.get(uuid4()),
        lambda: sources.list(SourceFilter()),
        lambda: sources.add(make_source("orders")),
        lambda: keys.add_if_none(make_key("k")),
    ]


def test_sqlite_in_a_missing_directory_is_unavailable(tmp_path: Path) -> None:
    db = Synced(SqliteDatabase(tmp_path / "missing" / "tdb.db"))
    assert_unavailable_within(1, *sqlite_calls(db))


def test_a_file_that_is_not_a_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "tdb.db"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    db = Synced(SqliteDatabase(path))
    assert_unavailable_within(1, *sqlite_calls(db))


def test_sqlite_locked_longer_than_the_busy_timeout_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "tdb.db"
    Synced(SqliteDatabase(path)).upgrade()
    db = Synced(SqliteDatabase(path, busy_timeout_ms=200))
    sources = Synced(SqliteSourceRepository(db.target))
    other_process = sqlite3.connect(path, isolation_level=None)
    try:
        other_process.execute("BEGIN IMMEDIATE")
        assert_unavailable_within(2, lambda: sources.add(make_source("orders")))
        # Readers are not held up by a writer in WAL mode.
        assert sources.list(SourceFilter()).sources == ()
        other_process.execute("ROLLBACK")
        sources.add(make_source("orders"))
    finally:
        other_process.close()
        db.close()


def test_a_closed_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    db = Synced(SqliteDatabase(tmp_path / "tdb.db"))
    db.upgrade()
    db.close()
    assert_unavailable_within(1, db.ping)


def test_a_closed_postgres_database_is_unavailable(postgres_stores: PostgresStores) -> None:
    used, unused = (
        Synced(PostgresDatabase(postgres_stores.url)),
        Synced(PostgresDatabase(postgres_stores.url)),
    )
    used.ping()
    used.close()
    unused.close()
    assert_unavailable_within(1, used.ping, unused.ping)


@contextmanager
def postgres_database(url: str, **options: float) -> Iterator[Any]:
    db = Synced(PostgresDatabase(url, **options))  # type: ignore[arg-type]
    try:
        yield db
    finally:
        db.close()


def through(url: str, relay: TcpRelay) -> str:
    """The same URL, reaching the server through the relay."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{relay.port}" if user else f"127.0.0.1:{relay.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def test_postgres_that_refuses_connections_fails_fast(postgres_stores: PostgresStores) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = urlunsplit(urlsplit(postgres_stores.url)._replace(netloc=f"postgres@127.0.0.1:{port}"))
    with postgres_database(url, connect_timeout=1) as db:
        sources = Synced(PostgresSourceRepository(db))
        assert_unavailable_within(2.5, db.ping, db.upgrade, lambda: sources.list(SourceFilter()))


@contextmanager
def relayed(postgres_stores: PostgresStores, source: Source) -> Iterator[tuple[TcpRelay, Any, Any]]:
    """A migrated store holding `source`, reached through a relay the test can cut."""
    host_port = urlsplit(postgres_stores.url)
    relay = TcpRelay(host_port.hostname or "127.0.0.1", host_port.port or 5432)
    relay.start()
    try:
        with (
            postgres_stores.schema_url() as url,
            postgres_database(through(url, relay), connect_timeout=1, reconnect_timeout=3) as db,
        ):
            sources = Synced(PostgresSourceRepository(db))
            db.upgrade()
            sources.add(source)
            yield relay, db, sources
    finally:
        relay.stop()


def test_postgres_going_away_fails_fast_and_recovers_by_itself(
    postgres_stores: PostgresStores,
) -> None:
    source = make_source("orders")
    with relayed(postgres_stores, source) as (relay, db, sources):
        relay.stop()
        assert_unavailable_within(
            2.5, db.ping, lambda: sources.get(source.id), lambda: sources.add(make_source("x"))
        )
        relay.start()
        deadline = time.monotonic() + 15
        while True:
            try:
                db.ping()
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the pool did not recover"
                time.sleep(0.2)
        assert sources.get(source.id) == source


def test_postgres_that_does_not_answer_in_time_is_unavailable(
    postgres_stores: PostgresStores,
) -> None:
    with (
        postgres_stores.schema_url() as url,
        postgres_database(url, statement_timeout_ms=300) as db,
    ):
        db.upgrade()
        sources, keys = Synced(PostgresSourceRepository(db)), Synced(PostgresApiKeyRepository(db))
        with psycopg.connect(url) as blocker:
            blocker.execute("LOCK TABLE sources, api_keys IN ACCESS EXCLUSIVE MODE")
            assert_unavailable_within(
                2, lambda: sources.list(SourceFilter()), lambda: keys.add(make_key("k"))
            )
        assert sources.list(SourceFilter()).sources == ()


def test_postgres_connections_that_died_while_idle_cost_no_failed_read(
    postgres_stores: PostgresStores,
) -> None:
    source = make_source("orders")
    with relayed(postgres_stores, source) as (relay, db, sources):
        # Every pooled connection dies (as in a server restart) while nobody uses them.
        relay.stop()
        relay.start()
        assert sources.get(source.id) == source
        db.ping()
        sources.add(make_source("after"))
