"""The PostgreSQL store's lookups: batched into one autocommit statement, and sturdy when the
server kills connections or goes away; and its writes, as quick to fail in an outage and as quick
to recover, and counted once when a connection dies with its answer."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs
import psycopg
import pytest

from adapters.storage.postgres import (
    PostgresDatabase,
    PostgresEventRepository,
    PostgresSourceRepository,
    _BrokenConnection,
)
from domain.errors import DuplicateSourceName, SourceNotFound, StoreUnavailable, VersionMismatch
from domain.events import Action, Event, EventFilter
from domain.sources import Source
from tests.builders import T0, make_source
from tests.contract.relay import TcpRelay
from tests.contract.stores import PostgresStores
from tests.contract.test_lifecycle import event
from tests.helpers import Synced, run

pytestmark = pytest.mark.postgres


def registered(source: Source) -> Event:
    return event(Action.SOURCE_REGISTERED, source)


def moved(source: Source) -> Source:
    """The source at version 2, described anew."""
    return attrs.evolve(source, description="moved", version=2, updated_at=T0)


def updated(source: Source) -> Event:
    return event(Action.SOURCE_UPDATED, moved(source), changed=("description",))


@pytest.fixture
def postgres_stores(postgres_url: str) -> Iterator[PostgresStores]:
    factory = PostgresStores(postgres_url)
    yield factory
    factory.close()


def named(url: str, application_name: str) -> str:
    """The URL with its sessions' application_name set: this test's connections, and no other."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("application_name", application_name)]
    return urlunsplit(parts._replace(query=urlencode(query)))


@contextmanager
def store(url: str, **options: Any) -> Iterator[tuple[PostgresDatabase, Any]]:
    db = PostgresDatabase(url, **options)
    try:
        run(db.upgrade())
        yield db, Synced(PostgresSourceRepository(db))
    finally:
        db.close()


@asynccontextmanager
async def closing(db: PostgresDatabase) -> AsyncIterator[PostgresDatabase]:
    """The block, then what the store holds on this loop let go (its writes ended)."""
    try:
        yield db
    finally:
        await db.release()


def sessions(admin: psycopg.Connection[Any], application_name: str) -> list[dict[str, Any]]:
    """The server's view of this test's sessions (in the test's own database only)."""
    cursor = admin.execute(
        "SELECT pid, state, query, wait_event_type, xact_start = query_start AS own_transaction"
        " FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
        [application_name],
    )
    names = [c.name for c in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def kill_sessions(admin: psycopg.Connection[Any], application_name: str) -> None:
    """Every connection of this test's pools dies, as in a server restart."""
    killed = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = %s AND datname = current_database()",
        [application_name],
    ).fetchall()
    assert killed
    assert all(ok for (ok,) in killed)


def test_lookups_made_at_once_are_one_autocommit_statement(
    postgres_stores: PostgresStores,
) -> None:
    name = f"tdb_lookup_{secrets.token_hex(4)}"
    sources = [make_source(f"s{i}") for i in range(20)]
    with (
        postgres_stores.schema_url() as url,
        store(named(url, name)) as (db, lookup),
        psycopg.connect(url, autocommit=True) as admin,
        psycopg.connect(url) as blocker,
    ):
        for source in sources:
            Synced(PostgresSourceRepository(db)).add(source)

        async def main() -> tuple[list[Source], list[dict[str, Any]]]:
            async with closing(db):
                # Held until the lookups' statement is seen waiting for it.
                blocker.execute("LOCK TABLE sources IN ACCESS EXCLUSIVE MODE")
                lookups = asyncio.gather(*(lookup.get(s.id) for s in sources))
                waiting: list[dict[str, Any]] = []
                for _ in range(1000):  # bounded: the statement reaches the lock within seconds
                    await asyncio.sleep(0.01)
                    waiting = [s for s in sessions(admin, name) if s["wait_event_type"] == "Lock"]
                    if waiting:
                        break
                seen = sessions(admin, name)
                blocker.rollback()
                return await lookups, [s for s in seen if s["state"] != "idle"]

        answers, busy = asyncio.run(main())
    assert answers == sources
    # One statement answers all twenty, alone in its transaction: no BEGIN or COMMIT round trips.
    assert len(busy) == 1, busy
    assert busy[0]["wait_event_type"] == "Lock"
    assert "= ANY(" in busy[0]["query"]
    assert busy[0]["own_transaction"] is True


def test_lookups_after_the_server_killed_their_connections_do_not_fail(
    postgres_stores: PostgresStores,
) -> None:
    name = f"tdb_lookup_{secrets.token_hex(4)}"
    source = make_source("orders")
    with (
        postgres_stores.schema_url() as url,
        store(named(url, name)) as (db, lookup),
        psycopg.connect(url, autocommit=True) as admin,
    ):
        Synced(PostgresSourceRepository(db)).add(source)

        async def main() -> list[list[Source]]:
            answers = []
            async with closing(db):
                for _ in range(3):
                    answers.append(await asyncio.gather(*(lookup.get(source.id) for _ in range(5))))
                    kill_sessions(admin, name)
                answers.append(await asyncio.gather(*(lookup.get(source.id) for _ in range(5))))
            return answers

        assert asyncio.run(main()) == [[source] * 5] * 4


def through(url: str, relay: TcpRelay) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{relay.port}" if user else f"127.0.0.1:{relay.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def relayed_store(
    postgres_stores: PostgresStores,
) -> Iterator[tuple[TcpRelay, PostgresDatabase, Any]]:
    """A migrated store, its lookups, and the relay the test cuts to take the server away."""
    host_port = urlsplit(postgres_stores.url)
    relay = TcpRelay(host_port.hostname or "127.0.0.1", host_port.port or 5432)
    relay.start()
    try:
        with (
            postgres_stores.schema_url() as url,
            store(through(url, relay), connect_timeout=1, reconnect_timeout=3) as (db, lookup),
        ):
            yield relay, db, lookup
    finally:
        relay.stop()


def test_lookups_fail_fast_while_the_server_is_away_and_recover(
    postgres_stores: PostgresStores,
) -> None:
    source = make_source("orders")
    with relayed_store(postgres_stores) as (relay, db, lookup):
        Synced(PostgresSourceRepository(db)).add(source)

        async def main() -> Source:
            async with closing(db):
                assert await lookup.get(source.id) == source
                relay.stop()
                started = time.monotonic()
                # Several batches' worth, made at once and one after another.
                failed = await asyncio.gather(
                    *(lookup.get(source.id) for _ in range(10)), return_exceptions=True
                )
                failed.append(
                    (await asyncio.gather(lookup.get(source.id), return_exceptions=True))[0]
                )
                assert time.monotonic() - started < 2.5
                assert all(isinstance(f, StoreUnavailable) for f in failed), failed
                relay.start()
                deadline = time.monotonic() + 15
                while True:
                    try:
                        return await lookup.get(source.id)
                    except StoreUnavailable:
                        assert time.monotonic() < deadline, "the lookups did not recover"
                        await asyncio.sleep(0.2)

        assert asyncio.run(main()) == source


def test_writes_on_the_loop_fail_fast_while_the_server_is_away_and_recover(
    postgres_stores: PostgresStores,
) -> None:
    with relayed_store(postgres_stores) as (relay, db, writes):
        before, during, after = (
            make_source("before"),
            make_source("during"),
            make_source("after"),
        )

        async def main() -> None:
            async with closing(db):
                await writes.add(before)
                relay.stop()
                started = time.monotonic()
                failed = await asyncio.gather(writes.add(during), return_exceptions=True)
                assert time.monotonic() - started < 2.5
                assert isinstance(failed[0], StoreUnavailable), failed
                relay.start()
                deadline = time.monotonic() + 15
                while True:
                    try:
                        await writes.add(after)
                        break
                    except StoreUnavailable:
                        assert time.monotonic() < deadline, "the writes did not recover"
                        await asyncio.sleep(0.2)

        asyncio.run(main())
        repository = Synced(PostgresSourceRepository(db))
        assert repository.get(before.id) == before
        assert repository.get(after.id) == after
        with pytest.raises(SourceNotFound):
            repository.get(during.id)


def test_writes_after_the_server_killed_their_connections_do_not_fail(
    postgres_stores: PostgresStores,
) -> None:
    name = f"tdb_writes_{secrets.token_hex(4)}"
    batches = [[make_source(f"s{round}-{i}") for i in range(5)] for round in range(4)]
    with (
        postgres_stores.schema_url() as url,
        store(named(url, name)) as (db, writes),
        psycopg.connect(url, autocommit=True) as admin,
    ):

        async def main() -> None:
            async with closing(db):
                for batch in batches:
                    await asyncio.gather(*(writes.add(s, registered(s)) for s in batch))
                    kill_sessions(admin, name)
                    await asyncio.gather(*(writes.update(moved(s), 1, updated(s)) for s in batch))
                    kill_sessions(admin, name)

        asyncio.run(main())
        repository = Synced(PostgresSourceRepository(db))
        for source in (s for batch in batches for s in batch):
            assert repository.get(source.id) == moved(source)
        assert len(Synced(PostgresEventRepository(db)).list(EventFilter()).events) == 40


class DyingAfterCommit(PostgresDatabase):
    """A store whose first write commits, then loses its answer with its connection."""

    died = False

    async def write(self, sql: str, parameters: Mapping[str, Any]) -> int:
        counted = await super().write(sql, parameters)
        if not self.died:
            self.died = True
            raise _BrokenConnection("the connection died before the answer came")
        return counted


@contextmanager
def dying_after_commit(postgres_stores: PostgresStores) -> Iterator[DyingAfterCommit]:
    """A migrated store whose first write loses its answer after it committed."""
    with postgres_stores.schema_url() as url:
        db = DyingAfterCommit(url)
        try:
            run(db.upgrade())
            yield db
        finally:
            db.close()


def on_its_loop(db: PostgresDatabase, work: Callable[[], Awaitable[None]]) -> None:
    """Run `work` on a new event loop, then close the store's pool for that loop."""

    async def main() -> None:
        try:
            await work()
        finally:
            await db.release()

    asyncio.run(main())


def test_a_write_whose_answer_was_lost_after_it_committed_counts_once(
    postgres_stores: PostgresStores,
) -> None:
    source = make_source("orders")
    with dying_after_commit(postgres_stores) as db:
        writes = Synced(PostgresSourceRepository(db))

        async def work() -> None:
            await writes.add(source, registered(source))
            # A name taken by another source is still a duplicate after the same loss.
            db.died = False
            with pytest.raises(DuplicateSourceName):
                await writes.add(make_source("orders"))

        on_its_loop(db, work)
        assert Synced(PostgresSourceRepository(db)).get(source.id) == source
        events = Synced(PostgresEventRepository(db)).list(EventFilter()).events
        assert [e.source_id for e in events] == [source.id]


def test_a_change_whose_answer_was_lost_after_it_committed_counts_once(
    postgres_stores: PostgresStores,
) -> None:
    source = make_source("orders")
    with dying_after_commit(postgres_stores) as db:
        Synced(PostgresSourceRepository(db)).add(source)
        writes, change = Synced(PostgresSourceRepository(db)), updated(source)

        async def work() -> None:
            await writes.update(moved(source), 1, change)
            # A change that lost to another is still a mismatch after the same loss.
            db.died = False
            with pytest.raises(VersionMismatch):
                await writes.update(moved(source), 1, updated(source))

        on_its_loop(db, work)
        assert Synced(PostgresSourceRepository(db)).get(source.id) == moved(source)
        assert Synced(PostgresEventRepository(db)).list(EventFilter()).events == (change,)
