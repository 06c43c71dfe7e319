"""The PostgreSQL store: asyncio psycopg pools per event loop, explicit transactions, versioned
migrations.

Where the work runs: every statement is awaited on the caller's event loop through that loop's
pool (the server's loop, the CLI's `asyncio.run`, a test's loop): nothing of it needs a thread.
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any
from uuid import UUID

import anyio.to_thread
import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from adapters.serialization import from_row, parse_timestamp, timestamp, to_row
from adapters.storage.listing import (
    EVENT_COLUMNS,
    INLINE_PAGE_MAX,
    KEY_COLUMNS,
    SNAPSHOT_COLUMNS,
    SOURCE_COLUMNS,
    Dialect,
    can_match,
    event_listing,
    event_page,
    page,
    storable,
)
from adapters.storage.outage import OutageWatch
from adapters.storage.postgres_columns import LATEST_COLUMNS_MIGRATION, replace_latest_columns
from adapters.storage.postgres_watch_schema import WATCH_MIGRATION
from adapters.storage.running import WritesToEnd
from adapters.storage.source_query import (
    ALL,
    Query,
    Rows,
    Spelling,
    page_rows,
    walk,
    ways,
    whole_listing,
)
from adapters.storage.webhook_schema import POSTGRES_MIGRATION
from domain.errors import (
    ApiKeyNotFound,
    DuplicateKeyName,
    DuplicateSourceName,
    KeyNotRotatable,
    SourceNotFound,
    StoreUnavailable,
    VersionMismatch,
)
from domain.events import Event, EventFilter, EventKey, EventPage
from domain.history import SchemaSnapshot, SnapshotHead
from domain.keys import ApiKey
from domain.sources import PageKey, Source, SourceFilter, SourcePage, SourceSummary

Migration = tuple[str | Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]], ...]
"""A version's steps: statements, or coroutine functions of the connection (a fill needing
Python)."""

MIGRATIONS: tuple[tuple[int, Migration], ...] = (
    (
        1,
        (
            # connection is json, not jsonb: json keeps the text as written, so every number and
            # string (even "\u0000") reads back exactly; it is never queried inside.
            # COLLATE "C" orders and compares by code point, as Python does.
            """
            CREATE TABLE sources (
                id uuid PRIMARY KEY,
                name text COLLATE "C" NOT NULL CONSTRAINT sources_name_unique UNIQUE,
                source_type text NOT NULL,
                connection json NOT NULL,
                description text NOT NULL,
                tags text[] NOT NULL,
                registered_by text NOT NULL,
                registered_at timestamptz NOT NULL,
                status text NOT NULL
            )
            """,
            "CREATE INDEX sources_by_registration ON sources (registered_at, id)",
            "CREATE INDEX sources_by_tag ON sources USING gin (tags)",
            """
            CREATE TABLE api_keys (
                key_id text COLLATE "C" PRIMARY KEY,
                name text NOT NULL,
                scopes text[] NOT NULL,
                secret_hash text NOT NULL,
                created_at timestamptz NOT NULL,
                revoked_at timestamptz
            )
            """,
            "CREATE INDEX api_keys_by_creation ON api_keys (created_at, key_id)",
        ),
    ),
    (
        2,
        (
            # The lifecycle: a version per source for conditional changes, and the audit trail.
            """
            ALTER TABLE sources ADD COLUMN version bigint NOT NULL DEFAULT 1,
                                ADD COLUMN updated_at timestamptz,
                                ADD COLUMN updated_by text
            """,
            "UPDATE sources SET updated_at = registered_at, updated_by = registered_by",
            """
            ALTER TABLE sources ALTER COLUMN updated_at SET NOT NULL,
                                ALTER COLUMN updated_by SET NOT NULL
            """,
            """
            CREATE TABLE events (
                id uuid PRIMARY KEY,
                at timestamptz NOT NULL,
                actor text COLLATE "C" NOT NULL,
                action text NOT NULL,
                source_id uuid,
                source_name text,
                key_id text,
                changed text[] NOT NULL,
                breaking boolean
            )
            """,
            "CREATE INDEX events_by_time ON events (at, id)",
            "CREATE INDEX events_by_source ON events (source_id, at, id)",
            # Keys made with every scope before audit:read existed were given every scope.
            """
            UPDATE api_keys SET scopes = ARRAY['audit:read', 'sources:read', 'sources:secrets',
                                               'sources:write']
             WHERE scopes = ARRAY['sources:read', 'sources:secrets', 'sources:write']
            """,
        ),
    ),
    (
        3,
        (
            # The primary key is the compare-and-set of concurrent inspections: of two that
            # would store the snapshot after the same one, exactly one can. The foreign key
            # removes a source's history in the statement that removes the source.
            """
            CREATE TABLE schema_snapshots (
                source_id uuid NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
                sequence bigint NOT NULL CHECK (sequence > 0),
                fingerprint text NOT NULL,
                columns json NOT NULL,
                observed_at timestamptz NOT NULL,
                PRIMARY KEY (source_id, sequence)
            )
            """,
        ),
    ),
    (
        4,
        (
            # Listings by tag and by type walk an index in listing order (source_query.py):
            # the tags table replaces the GIN index, which the planner skipped for a walk of
            # the listing order with a filter. Tags and count are kept by a trigger, in the
            # transaction of each change; the count in a few rows, so that concurrent writers
            # (one slot per server process) seldom wait for one another's.
            """
            CREATE TABLE source_tags (
                tag text NOT NULL,
                registered_at timestamptz NOT NULL,
                source_id uuid NOT NULL,
                PRIMARY KEY (tag, registered_at, source_id)
            )
            """,
            """
            INSERT INTO source_tags
            SELECT DISTINCT tag, registered_at, id FROM sources, unnest(tags) AS tag
            """,
            "CREATE TABLE source_count (slot integer PRIMARY KEY, n bigint NOT NULL)",
            "INSERT INTO source_count SELECT 0, count(*) FROM sources",
            """
            CREATE FUNCTION tdb_sources_kept() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP <> 'INSERT' THEN
                    DELETE FROM source_tags WHERE tag = ANY (OLD.tags)
                       AND registered_at = OLD.registered_at AND source_id = OLD.id;
                END IF;
                IF TG_OP <> 'DELETE' THEN
                    INSERT INTO source_tags
                    SELECT DISTINCT tag, NEW.registered_at, NEW.id FROM unnest(NEW.tags) AS tag;
                END IF;
                IF TG_OP <> 'UPDATE' THEN
                    INSERT INTO source_count AS kept
                    VALUES (pg_backend_pid() % 16, CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END)
                    ON CONFLICT (slot) DO UPDATE SET n = kept.n + excluded.n;
                END IF;
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER sources_kept AFTER INSERT OR DELETE ON sources
            FOR EACH ROW EXECUTE FUNCTION tdb_sources_kept()
            """,
            """
            CREATE TRIGGER sources_retagged AFTER UPDATE OF tags ON sources
            FOR EACH ROW WHEN (OLD.tags IS DISTINCT FROM NEW.tags)
            EXECUTE FUNCTION tdb_sources_kept()
            """,
            "DROP INDEX sources_by_tag",
            "CREATE INDEX sources_by_type ON sources (source_type, registered_at, id)",
        ),
    ),
)
"""Every schema version and its statements, oldest first; a released version is never edited."""

MIGRATIONS += ((5, WATCH_MIGRATION),)
# Webhook endpoints and the outbox of their deliveries, filled by a trigger on events.
MIGRATIONS += ((6, POSTGRES_MIGRATION),)

KEYS_MIGRATION: tuple[str, ...] = (
    # Keys people manage: who made each, when it expires, when it was last used (to the
    # minute), which key a rotation replaced, and whether a rotation took its name.
    """
        ALTER TABLE api_keys ADD COLUMN created_by text,
                             ADD COLUMN expires_at timestamptz,
                             ADD COLUMN last_used_at timestamptz,
                             ADD COLUMN rotated_from text,
                             ADD COLUMN superseded boolean NOT NULL DEFAULT false
        """,
    """
        UPDATE api_keys SET created_by = COALESCE(
            (SELECT actor FROM events WHERE action = 'key.created'
              AND events.key_id = api_keys.key_id ORDER BY at LIMIT 1), 'tdb-cli')
        """,
    # Active keys that share a name (made before the store held the rule): the newest
    # keeps the name; the others keep working, as if a rotation had replaced them.
    """
        UPDATE api_keys SET superseded = true
         WHERE revoked_at IS NULL AND EXISTS (
            SELECT 1 FROM api_keys AS newer
             WHERE newer.name = api_keys.name AND newer.revoked_at IS NULL
               AND (newer.created_at, newer.key_id) > (api_keys.created_at, api_keys.key_id))
        """,
    "CREATE UNIQUE INDEX api_keys_name_held ON api_keys (name)"
    " WHERE revoked_at IS NULL AND NOT superseded",
)
"""Keys people manage: who made each, when it expires, when it was last used (to the minute),
which key a rotation replaced, whether a rotation took its name (one holder per name)."""

MIGRATIONS += ((7, KEYS_MIGRATION),)
MIGRATIONS += ((8, LATEST_COLUMNS_MIGRATION),)

# Any fixed 64-bit number, the same in every process of every version: "tdb-migr".
_MIGRATION_LOCK = 0x7464622D6D696772

POSTGRES = Dialect(
    param="%s",
    timestamp_param="%s::timestamptz",
    uuid_param="%s::uuid",
    uuid_value=lambda value: value,
)
# PostgreSQL takes no index hints: the queries of source_query.py run in a transaction whose
# planner may not read a table through (`INDEX_WALKS`), nor join by hash or merge, so that it
# walks the index each query names, whatever its statistics say (none, before an ANALYZE).
POSTGRES_WAYS = Spelling(
    POSTGRES,
    indexed=lambda index: "",
    name_index="sources_name_unique",
    # A lateral subquery cannot be the outer loop, nor (behind OFFSET 0) be merged into the
    # join: each walked entry fetches its source by id, in the walk's order.
    joined="CROSS JOIN LATERAL (SELECT * FROM sources WHERE id = w.id OFFSET 0) s",
    # A subquery with an OFFSET is planned apart: a prefix's names by the name index.
    fence=" OFFSET 0",
)
INDEX_WALKS = "SELECT " + ", ".join(
    f"set_config('enable_{plan}', 'off', true)"
    for plan in ("seqscan", "bitmapscan", "hashjoin", "mergejoin")
)
"""What makes the rest of a transaction's queries walk indexes (each setting lasts to its end)."""
LISTING_CHUNK = 2000
"""Rows of a whole listing fetched from its server-side cursor at a time."""


class _BrokenConnection(StoreUnavailable):
    """The connection a call was given had died; a fresh one may well work."""


class PostgresDatabase:
    """A PostgreSQL database reached through a pool of asyncio connections per event loop.

    The pool of a loop is made on the first call awaited there (`max_size` connections at most)
    and closed by `release` on that loop; a call on another loop makes that loop's own (the
    previous loop's is closed if it still runs). Pools open without waiting for the server, and
    `close()` ends the database for good. Waiting for a connection gives up after
    `connect_timeout` seconds, so while the server is down every call fails fast with
    `StoreUnavailable`. Connections are in autocommit mode (a read is one statement, one round
    trip) and are not checked at every checkout (one more round trip per request): when one
    turns out dead, the pool checks all its idle ones at once, and a read is retried on a fresh
    connection. Statements run in UTC with `statement_timeout_ms`. A write begun through
    `shielded` runs to its end even if its caller is cancelled; `release` waits for it.
    """

    def __init__(
        self,
        url: str,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5,
        statement_timeout_ms: int = 5000,
        *,
        reconnect_timeout: float = 10,
    ) -> None:
        self.statement_timeout_ms = statement_timeout_ms
        self._url = url
        self._min_size = min(min_size, max_size)
        self._loop_pool_size = max(1, max_size)
        self._timeouts = (connect_timeout, reconnect_timeout)
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            # libpq counts whole seconds, at least 2.
            "connect_timeout": max(2, math.ceil(connect_timeout)),
            # A peer that stops acknowledging (cable pulled, host gone) fails in this
            # many milliseconds instead of TCP's many minutes.
            "tcp_user_timeout": max(1000, int(connect_timeout * 1000)),
        }
        # The pool of the event loop that uses the store (one loop at a time, in practice).
        self._loop_pool: tuple[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]] | None = None
        self._open_lock = threading.Lock()
        self._closed = False
        self._watch = OutageWatch("postgres")
        self.shielded = WritesToEnd()

    @property
    def loop_pool_size(self) -> int:
        """The most connections an event loop's pool holds."""
        return self._loop_pool_size

    def open(self) -> None:
        """Refuse a closed database (pools are made by their loop's first call)."""
        with self._open_lock:
            if self._closed:
                raise StoreUnavailable("the PostgreSQL store is closed")

    def close(self) -> None:
        """Close the pools and their connections; the database cannot be used afterwards."""
        with self._open_lock:
            self._closed = True
        if self._loop_pool is not None:
            self._drop_loop_pool(*self._loop_pool)

    def __enter__(self) -> PostgresDatabase:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def upgrade(self) -> list[int]:
        """Apply pending migrations in one transaction under an advisory lock; return them."""
        async with self.transaction() as conn:
            # Several processes may start at once: the lock makes them migrate one after another.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
            # A migration may rightly take longer than any request should.
            await conn.execute("SET LOCAL statement_timeout = 0")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cursor = await conn.execute("SELECT version FROM schema_migrations")
            done = {row[0] for row in await cursor.fetchall()}
            applied = []
            for version, statements in MIGRATIONS:
                if version in done:
                    continue
                for statement in statements:
                    if callable(statement):
                        await statement(conn)
                    else:
                        await conn.execute(statement)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", [version])
                applied.append(version)
            return applied

    async def ping(self) -> None:
        """Return if the server answers a query; raise `StoreUnavailable` if not."""
        await self.read("SELECT 1")

    def usage(self) -> tuple[int, int]:
        """Connections in the pool, and those lent out right now."""
        if self._loop_pool is None:
            return 0, 0
        stats = self._loop_pool[1].get_stats()
        size = stats.get("pool_size", 0)
        return size, size - stats.get("pool_available", 0)

    def _unavailable(self, exc: Exception, broken: bool) -> StoreUnavailable:
        """What a failure to use the store is to the caller (an outage is noted once)."""
        if isinstance(exc, pg_errors.UndefinedTable):
            return StoreUnavailable(
                f"the PostgreSQL store has no schema yet (run `tdb db upgrade`): {exc}"
            )
        self._watch.failed(exc)
        if broken:
            return _BrokenConnection(f"the PostgreSQL store cannot be used: {exc}")
        return StoreUnavailable(f"the PostgreSQL store cannot be used: {exc}")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection inside a transaction, committed on success, rolled back on error."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def read(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row of one query, as dicts; retried once if its connection had died."""
        try:
            return await self._read(sql, parameters)
        except _BrokenConnection:
            return await self._read(sql, parameters)

    async def _read(self, sql: str, parameters: Sequence[Any]) -> list[dict[str, Any]]:
        async with self.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(sql, list(parameters))
            return await cursor.fetchall()

    async def read_rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """As `read`, each row a tuple in the query's column order (no dict per row)."""
        try:
            return await self._read_rows(sql, parameters)
        except _BrokenConnection:
            return await self._read_rows(sql, parameters)

    async def _read_rows(self, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self.connection() as conn:
            cursor = await conn.execute(sql, list(parameters))
            return await cursor.fetchall()

    async def read_walks(self, steps: Callable[[], Generator[Query, Rows, Rows]]) -> Rows:
        """The rows a sans-IO generator of queries ends with, its queries run in one transaction
        that walks indexes (`INDEX_WALKS`); retried once if its connection had died."""
        try:
            return await self._walk(steps())
        except _BrokenConnection:
            return await self._walk(steps())

    async def _walk(self, steps: Generator[Query, Rows, Rows]) -> Rows:
        async with self.transaction() as conn:
            await conn.execute(INDEX_WALKS)
            try:
                query = next(steps)
                while True:
                    query = steps.send(await (await conn.execute(*query)).fetchall())
            except StopIteration as done:
                return done.value

    async def write(self, sql: str, parameters: Mapping[str, Any]) -> int:
        """One statement (atomic in autocommit); the rows it counted.

        It is not retried: a connection that died after sending it may have committed it.
        """
        async with self.connection() as conn:
            return (await conn.execute(sql, parameters)).rowcount

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of the running loop's pool; failures to reach the server are mapped."""
        pool = await self._loop_pool_for(asyncio.get_running_loop())
        given: psycopg.AsyncConnection[Any] | None = None
        try:
            async with pool.connection() as given:
                yield given
        except (PoolTimeout, PoolClosed, psycopg.OperationalError, pg_errors.UndefinedTable) as exc:
            broken = given is not None and given.broken
            if broken:
                # The server restarted or went away: drop every idle connection that died
                # with this one before another call picks it up.
                await pool.check()
            raise self._unavailable(exc, broken) from exc
        self._watch.answered()

    async def release(self) -> None:
        """Wait for the writes still running on this loop, then close its pool, if it has one
        (a later call on the loop makes another)."""
        await self.shielded.ended()
        loop = asyncio.get_running_loop()
        current = self._loop_pool
        if current is not None and current[0] is loop:
            self._loop_pool = None
            await current[1].close()

    async def _loop_pool_for(self, loop: asyncio.AbstractEventLoop) -> AsyncConnectionPool[Any]:
        current = self._loop_pool
        if current is not None and current[0] is loop:
            return current[1]
        if self._closed:
            raise StoreUnavailable("the PostgreSQL store is closed")
        connect_timeout, reconnect_timeout = self._timeouts
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self._url,
            min_size=self._min_size,
            max_size=self._loop_pool_size,
            open=False,
            timeout=connect_timeout,
            # A failed background reconnection retries with growing delays until this
            # many seconds, then the next request starts a fresh attempt at once.
            reconnect_timeout=reconnect_timeout,
            configure=self._configure,
            kwargs=self._kwargs,
            name="tdb-store",
        )
        try:
            await pool.open(wait=False)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"the PostgreSQL store cannot be used: {exc}") from exc
        current = self._loop_pool
        if current is not None and current[0] is loop:  # another call made one meanwhile
            await pool.close()
            return current[1]
        self._loop_pool = (loop, pool)
        if current is not None:
            self._drop_loop_pool(*current)
        return pool

    @staticmethod
    def _drop_loop_pool(loop: asyncio.AbstractEventLoop, pool: AsyncConnectionPool[Any]) -> None:
        """Close a loop's pool from outside that loop, if the loop still runs to close it."""
        if loop.is_running() and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                loop.create_task(pool.close())
            else:
                asyncio.run_coroutine_threadsafe(pool.close(), loop)

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(_SESSION_SETTINGS, [str(self.statement_timeout_ms)])


_SESSION_SETTINGS = (
    "SELECT set_config('statement_timeout', %s, false), set_config('TimeZone', 'UTC', false)"
)


# The columns PostgreSQL is given as JSON text (the others are its own types: text[], uuid...).
_SOURCE_JSON = ("connection",)
_SNAPSHOT_JSON = ("columns",)


def _source_row(source: Source) -> dict[str, Any]:
    return to_row(source, _SOURCE_JSON)


_INSERT_SOURCE = (
    f"INSERT INTO sources ({SOURCE_COLUMNS}) VALUES (%(id)s::uuid, %(name)s,"
    " %(source_type)s, %(connection)s::json, %(description)s, %(tags)s::text[],"
    " %(registered_by)s, %(registered_at)s::timestamptz, %(status)s, %(version)s,"
    " %(updated_at)s::timestamptz, %(updated_by)s)"
)


def _adding(source: Source, event: Event | None) -> tuple[str, dict[str, Any]]:
    """The statement that adds a source and its event, and its parameters.

    One statement in autocommit is atomic: the source and its event go in as one statement
    (a data-modifying CTE), with no BEGIN and COMMIT round trips around it.
    """
    if event is None:
        return _INSERT_SOURCE, _source_row(source)
    sql = f"WITH source AS ({_INSERT_SOURCE} RETURNING id) {_INSERT_EVENT}"
    return sql, {**_source_row(source), **_event_row(event)}


_UPDATE_SOURCE = (
    "UPDATE sources SET name = %(name)s, connection = %(connection)s::json,"
    " description = %(description)s, tags = %(tags)s::text[],"
    " status = %(status)s, version = %(version)s,"
    " updated_at = %(updated_at)s::timestamptz, updated_by = %(updated_by)s"
    " WHERE id = %(id)s::uuid AND version = %(expected)s RETURNING id"
)


def _updating(
    source: Source, expected_version: int, event: Event | None
) -> tuple[str, dict[str, Any]]:
    """The statement that replaces a source still at `expected_version` and adds its event, and
    its parameters; it counts one row if it did.

    One statement in autocommit: the event is inserted only for a row updated, and both commit
    together (a data-modifying CTE), in one round trip.
    """
    parameters = {**_source_row(source), "expected": expected_version}
    if event is None:
        return _UPDATE_SOURCE, parameters
    sql = f"WITH changed AS ({_UPDATE_SOURCE}) {_INSERT_EVENT_SELECT} FROM changed"
    return sql, {**parameters, **_event_row(event)}


def _name_taken(exc: pg_errors.UniqueViolation) -> bool:
    """Whether a unique violation is that of a source's name (any other is a bug)."""
    return exc.diag.constraint_name == "sources_name_unique"


_SOURCES_BY_ID = f"SELECT {SOURCE_COLUMNS} FROM sources WHERE id = ANY(%s)"
_SOURCE_EXISTS = "SELECT 1 AS found FROM sources WHERE id = %s"
_EVENT_EXISTS = "SELECT 1 AS found FROM events WHERE id = %s"


# Lookups by id waiting for one query: each id's awaiting answers.
_Batch = dict[UUID, list[asyncio.Future[Source]]]


class _Turns:
    """One event loop's lookups: those waiting for the next batch, and the batches out."""

    def __init__(self) -> None:
        self.waiting: _Batch = {}
        self.out = 0
        self.scheduled = False
        self.tasks: set[asyncio.Task[None]] = set()


class PostgresSourceRepository:
    """Sources in the `sources` table; names unique by a UNIQUE constraint (exact match).

    Lookups by id go out in batches, one query each (`id = ANY(...)`, one round trip on one
    connection), at most as many batches at once as the loop's pool has connections: the
    lookups made while those are out wait together and go out as the next batch, as soon as
    one comes back. Under load a busy loop sends a query per turn, not one per request. A
    batch's query starts after each of its lookups was made, so each sees every change
    committed before it. When a batch finds the store unavailable, the lookups waiting behind
    it fail at once too, so in an outage every lookup fails within the pool's timeout.

    An add or a change is one statement on one connection. If that connection dies with it
    (the server restarted, or killed it), it is sent once more on a fresh one, and a first
    attempt that did commit counts: an add finds its source's id taken, a change finds its
    event in. Once begun, a write runs to its end even if its caller is cancelled.
    """

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = (
            weakref.WeakKeyDictionary()
        )

    async def add(self, source: Source, event: Event | None = None) -> None:
        try:
            await self._db.shielded(self._add(source, event))
        except pg_errors.UniqueViolation as exc:
            if _name_taken(exc):
                raise DuplicateSourceName(source.name.value) from None
            raise

    async def update(
        self, source: Source, expected_version: int, event: Event | None = None
    ) -> None:
        try:
            await self._db.shielded(self._update(source, expected_version, event))
        except pg_errors.UniqueViolation as exc:
            if _name_taken(exc):
                raise DuplicateSourceName(source.name.value) from None
            raise

    async def get(self, source_id: UUID) -> Source:
        loop = asyncio.get_running_loop()
        turns = self._turns.get(loop)
        if turns is None:
            turns = self._turns[loop] = _Turns()
        answer: asyncio.Future[Source] = loop.create_future()
        turns.waiting.setdefault(source_id, []).append(answer)
        if not turns.scheduled and turns.out < self._db.loop_pool_size:
            # At the loop's next turn: the lookups made until then go out together.
            turns.scheduled = True
            loop.call_soon(self._send, loop, turns)
        return await answer

    async def list(
        self, source_filter: SourceFilter, limit: int | None = None, after: PageKey | None = None
    ) -> SourcePage:
        if not can_match(source_filter):
            return SourcePage(())
        if ways(source_filter):
            steps = partial(page_rows, POSTGRES_WAYS, source_filter, limit, after)
            rows = await self._db.read_walks(steps)
        else:  # no filter: the listing order, which has one plan, in one statement
            rows = await self._db.read_rows(*walk(POSTGRES_WAYS, ALL, source_filter, limit, after))
        if limit is not None and limit <= INLINE_PAGE_MAX:
            return page(_summaries(rows), limit)
        # Thousands of rows would hold the event loop for tens of milliseconds.
        return page(await anyio.to_thread.run_sync(_summaries, rows), limit)

    async def chunks(
        self, source_filter: SourceFilter, size: int | None = None
    ) -> AsyncGenerator[Sequence[SourceSummary], None]:
        if not can_match(source_filter):
            return
        sql, parameters = whole_listing(POSTGRES_WAYS, source_filter)
        # A server-side cursor in a transaction: a snapshot, held here a chunk at a time.
        async with self._db.transaction() as conn:
            await conn.execute(INDEX_WALKS)
            cursor = conn.cursor(name="tdb_listing")
            try:
                await cursor.execute(sql, parameters)
                while rows := await cursor.fetchmany(size or LISTING_CHUNK):
                    yield await anyio.to_thread.run_sync(_summaries, rows)
            finally:
                await cursor.close()

    async def revision(self) -> int | None:
        return None  # no cheap signal: a listing is read every time

    async def remove(
        self, source_id: UUID, expected_version: int | None = None, event: Event | None = None
    ) -> None:
        delete = "DELETE FROM sources WHERE id = %(id)s"
        parameters: dict[str, Any] = {"id": source_id, "expected": expected_version}
        if expected_version is not None:
            delete += " AND version = %(expected)s"
        delete += " RETURNING name"
        if event is not None:
            # As for an update: one statement; the event names the source as it was deleted.
            insert = _INSERT_EVENT_SELECT.replace("%(event_source_name)s", "gone.name")
            delete = f"WITH gone AS ({delete}) {insert} FROM gone RETURNING source_name"
            parameters.update(_event_row(event))
        async with self._db.connection() as conn:
            if not await (await conn.execute(delete, parameters)).fetchall():
                await _mismatch(conn, source_id)

    async def count(self) -> int:
        # Kept by the trigger of every add and removal: a count(*) reads the whole table.
        rows = await self._db.read("SELECT coalesce(sum(n), 0) AS n FROM source_count")
        return int(rows[0]["n"])

    async def _add(self, source: Source, event: Event | None) -> None:
        sql, parameters = _adding(source, event)
        try:
            await self._db.write(sql, parameters)
        except _BrokenConnection:
            # The connection died with the statement, which may or may not have committed.
            # Sent again on a fresh connection, it goes in now, or finds itself already in: the
            # source's id is its own, so a conflict with a row of that id is the first attempt.
            try:
                await self._db.write(sql, parameters)
            except pg_errors.UniqueViolation:
                if await self._db.read(_SOURCE_EXISTS, [source.id]):
                    return
                raise

    async def _update(self, source: Source, expected_version: int, event: Event | None) -> None:
        sql, parameters = _updating(source, expected_version, event)
        try:
            updated = await self._db.write(sql, parameters)
        except _BrokenConnection:
            if event is None:  # nothing of its own tells whether it went in
                raise
            # As for an add: sent again, it finds the version moved on if the first attempt
            # committed, and then its event (whose id is its own) is in.
            updated = await self._db.write(sql, parameters)
            if not updated and await self._db.read(_EVENT_EXISTS, [event.id]):
                return
        if not updated:
            rows = await self._db.read(_VERSION, [source.id])
            _mismatch_of(source.id, rows[0]["version"] if rows else None)

    def _send(self, loop: asyncio.AbstractEventLoop, turns: _Turns) -> None:
        turns.scheduled = False
        if not turns.waiting or turns.out >= self._db.loop_pool_size:
            return
        batch, turns.waiting = turns.waiting, {}
        turns.out += 1
        task = loop.create_task(self._answer(loop, turns, batch))
        # The loop keeps only a weak reference to a task.
        turns.tasks.add(task)
        task.add_done_callback(turns.tasks.discard)

    async def _answer(
        self,
        loop: asyncio.AbstractEventLoop,
        turns: _Turns,
        batch: _Batch,
    ) -> None:
        try:
            rows = await self._db.read(_SOURCES_BY_ID, [list(batch)])
        except asyncio.CancelledError:
            for answers in batch.values():
                for answer in answers:
                    answer.cancel()
            raise
        except Exception as exc:
            _fail(exc, batch, turns)
        else:
            found = {row["id"]: row for row in rows}
            for source_id, answers in batch.items():
                row = found.get(source_id)
                source = from_row(row, Source) if row is not None else None
                for answer in answers:
                    if answer.done():  # its request was given up
                        continue
                    if source is None:
                        answer.set_exception(SourceNotFound(source_id))
                    else:
                        answer.set_result(source)
        finally:
            turns.out -= 1
            if turns.waiting:
                self._send(loop, turns)


def _summaries(rows: Sequence[tuple[Any, ...]]) -> list[SourceSummary]:
    """Straight from row tuples to summaries, as SQLite does: a full listing is 10,000 rows and
    more (the driver gives the id as a UUID, the tags as a list, the time as a datetime)."""
    return [
        SourceSummary(
            source_id, name, source_type, description, tuple(tags), parse_timestamp(registered_at)
        )
        for source_id, name, source_type, description, tags, registered_at in rows
    ]


def _fail(exc: Exception, batch: _Batch, turns: _Turns) -> None:
    """Fail the batch's lookups with `exc`, and those waiting behind it if the store is down."""
    failed = [batch]
    if isinstance(exc, StoreUnavailable):
        failed.append(turns.waiting)
        turns.waiting = {}
    for lookups in failed:
        for answers in lookups.values():
            for answer in answers:
                if not answer.done():
                    answer.set_exception(_each_own(exc))


def _each_own(exc: Exception) -> Exception:
    """A failure to hand to one of several waiters (each raise adds to an exception's traceback)."""
    if isinstance(exc, StoreUnavailable):
        own = StoreUnavailable(*exc.args)
        own.__cause__ = exc.__cause__
        return own
    return exc


_EVENT_VALUES = (
    "%(event_id)s::uuid, %(event_at)s::timestamptz, %(event_actor)s, %(event_action)s,"
    " %(event_source_id)s::uuid, %(event_source_name)s, %(event_key_id)s,"
    " %(event_changed)s::text[], %(event_breaking)s::boolean, %(event_reason)s,"
    " %(event_webhook_id)s::uuid"
)
_INSERT_EVENT = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({_EVENT_VALUES})"
# The same insert fed by a data-modifying CTE: `... FROM <cte>` follows it.
_INSERT_EVENT_SELECT = f"INSERT INTO events ({EVENT_COLUMNS}) SELECT {_EVENT_VALUES}"


def _event_row(event: Event) -> dict[str, Any]:
    return {f"event_{name}": value for name, value in to_row(event).items()}


async def _record(conn: psycopg.AsyncConnection[Any], event: Event | None) -> None:
    """Append the event inside the caller's transaction."""
    if event is not None:
        await conn.execute(_INSERT_EVENT, _event_row(event))


_VERSION = "SELECT version FROM sources WHERE id = %s"


async def _mismatch(conn: psycopg.AsyncConnection[Any], source_id: UUID) -> None:
    """Raise why a conditional change matched no row: no such source, or another version."""
    row = await (await conn.execute(_VERSION, [source_id])).fetchone()
    _mismatch_of(source_id, None if row is None else row[0])


def _mismatch_of(source_id: UUID, version: int | None) -> None:
    """Raise why a conditional change matched no row, given the source's version now."""
    if version is None:
        raise SourceNotFound(source_id)
    raise VersionMismatch(source_id, version)


class PostgresEventRepository:
    """The audit trail in the `events` table."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def append(self, event: Event) -> None:
        await self._db.write(_INSERT_EVENT, _event_row(event))

    async def list(
        self, event_filter: EventFilter, limit: int | None = None, after: EventKey | None = None
    ) -> EventPage:
        if event_filter.actor is not None and not storable(event_filter.actor):
            return EventPage(())
        sql, parameters = event_listing(POSTGRES, event_filter, limit, after)
        rows = await self._db.read(sql, parameters)
        return event_page([from_row(row, Event) for row in rows], limit)


class PostgresSnapshotRepository:
    """Snapshots in the `schema_snapshots` table, keyed by (source, sequence)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def head(self, source_id: UUID) -> SnapshotHead | None:
        rows = await self._db.read(
            "SELECT sequence, fingerprint FROM schema_snapshots WHERE source_id = %s"
            " ORDER BY sequence DESC LIMIT 1",
            [source_id],
        )
        return SnapshotHead(rows[0]["sequence"], rows[0]["fingerprint"]) if rows else None

    async def latest(self, source_id: UUID) -> SchemaSnapshot | None:
        found = await self.newest_first(source_id, 1)
        return found[0] if found else None

    async def append(self, snapshot: SchemaSnapshot, event: Event | None = None) -> bool:
        # Sequences have no gaps, so "the newest is sequence - 1" is "sequence is free and
        # sequence - 1 is taken": the primary key decides the first, and a concurrent insert
        # of the same key waits for this one's outcome.
        try:
            async with self._db.transaction() as conn:
                cursor = await conn.execute(
                    f"INSERT INTO schema_snapshots ({SNAPSHOT_COLUMNS})"
                    " SELECT %(source_id)s::uuid, %(sequence)s, %(fingerprint)s, %(columns)s::json,"
                    " %(observed_at)s::timestamptz"
                    " WHERE %(sequence)s = 1 OR EXISTS (SELECT 1 FROM schema_snapshots"
                    " WHERE source_id = %(source_id)s::uuid AND sequence = %(sequence)s - 1)"
                    " ON CONFLICT (source_id, sequence) DO NOTHING",
                    to_row(snapshot, _SNAPSHOT_JSON),
                )
                if cursor.rowcount != 1:
                    return False
                await replace_latest_columns(conn, snapshot)
                await _record(conn, event)
                return True
        except pg_errors.ForeignKeyViolation:
            raise SourceNotFound(snapshot.source_id) from None

    async def newest_first(
        self, source_id: UUID, limit: int, before: int | None = None
    ) -> Sequence[SchemaSnapshot]:
        rows = await self._db.read(
            f"SELECT {SNAPSHOT_COLUMNS} FROM schema_snapshots"
            " WHERE source_id = %s AND sequence < %s ORDER BY sequence DESC LIMIT %s",
            [source_id, before if before is not None else 2**62, limit],
        )
        return [from_row(row, SchemaSnapshot) for row in rows]


class PostgresApiKeyRepository:
    """API keys in the `api_keys` table."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def add(self, key: ApiKey, event: Event | None = None) -> None:
        async with self._db.transaction() as conn:
            await self._insert(conn, key)
            await _record(conn, event)

    async def add_if_none(self, key: ApiKey, event: Event | None = None) -> bool:
        async with self._db.transaction() as conn:
            # EXCLUSIVE lets readers in but holds back every other writer until the insert commits.
            await conn.execute("LOCK TABLE api_keys IN EXCLUSIVE MODE")
            cursor = await conn.execute("SELECT EXISTS (SELECT 1 FROM api_keys)")
            row = await cursor.fetchone()
            if row is not None and row[0]:
                return False
            await self._insert(conn, key)
            await _record(conn, event)
            return True

    async def get(self, key_id: str) -> ApiKey:
        rows = (
            await self._db.read(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = %s", [key_id])
            if storable(key_id)
            else []
        )
        if not rows:
            raise ApiKeyNotFound(key_id)
        return from_row(rows[0], ApiKey)

    async def list(self) -> Sequence[ApiKey]:
        rows = await self._db.read(
            f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
        )
        return [from_row(row, ApiKey) for row in rows]

    async def revoke(self, key_id: str, at: datetime, event: Event | None = None) -> ApiKey:
        if not storable(key_id):
            raise ApiKeyNotFound(key_id)
        async with self._db.transaction() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            # FOR UPDATE: of two simultaneous revocations, only the first sees an active key.
            await cursor.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = %s FOR UPDATE", [key_id]
            )
            row = await cursor.fetchone()
            if row is None:
                raise ApiKeyNotFound(key_id)
            if row["revoked_at"] is not None:
                return from_row(row, ApiKey)
            await cursor.execute(
                f"UPDATE api_keys SET revoked_at = %s::timestamptz WHERE key_id = %s"
                f" RETURNING {KEY_COLUMNS}",
                [timestamp(at), key_id],
            )
            revoked = await cursor.fetchone()
            if revoked is None:  # the row is locked: it cannot have gone
                raise ApiKeyNotFound(key_id)
            await _record(conn, event)
        return from_row(revoked, ApiKey)

    async def rotate(
        self, old_key_id: str, old_expires_at: datetime, new: ApiKey, events: Sequence[Event]
    ) -> None:
        if not storable(old_key_id):
            raise ApiKeyNotFound(old_key_id)
        async with self._db.transaction() as conn:
            # FOR UPDATE: of two simultaneous rotations, only the first sees an unsuperseded key.
            cursor = await conn.execute(
                "SELECT revoked_at, superseded FROM api_keys WHERE key_id = %s FOR UPDATE",
                [old_key_id],
            )
            row = await cursor.fetchone()
            if row is None:
                raise ApiKeyNotFound(old_key_id)
            if row[0] is not None or row[1]:
                raise KeyNotRotatable(old_key_id, "revoked" if row[0] else "already rotated")
            await conn.execute(
                "UPDATE api_keys SET superseded = true, expires_at = %s::timestamptz"
                " WHERE key_id = %s",
                [timestamp(old_expires_at), old_key_id],
            )
            await self._insert(conn, new)
            for event in events:
                await _record(conn, event)

    async def touch(self, uses: Mapping[str, datetime]) -> None:
        rows = [(timestamp(at), key_id) for key_id, at in sorted(uses.items())]
        async with self._db.transaction() as conn, conn.cursor() as cursor:
            # In key order, so that two processes writing the same keys never deadlock.
            await cursor.executemany(
                "UPDATE api_keys SET last_used_at = %s::timestamptz WHERE key_id = %s"
                " AND (last_used_at IS NULL OR last_used_at < %s::timestamptz)",
                [(at, key_id, at) for at, key_id in rows],
            )

    @staticmethod
    async def _insert(conn: psycopg.AsyncConnection[Any], key: ApiKey) -> None:
        # A key stored again under its id replaces the old one, as the in-memory store does;
        # a name held by another key is refused by the partial unique index.
        try:
            await conn.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (%(key_id)s, %(name)s,"
                " %(scopes)s::text[], %(secret_hash)s, %(created_at)s::timestamptz,"
                " %(revoked_at)s::timestamptz, %(created_by)s, %(expires_at)s::timestamptz,"
                " %(last_used_at)s::timestamptz, %(rotated_from)s, %(superseded)s)"
                " ON CONFLICT (key_id) DO UPDATE SET"
                " name = excluded.name, scopes = excluded.scopes,"
                " secret_hash = excluded.secret_hash,"
                " created_at = excluded.created_at, revoked_at = excluded.revoked_at,"
                " created_by = excluded.created_by, expires_at = excluded.expires_at,"
                " last_used_at = excluded.last_used_at, rotated_from = excluded.rotated_from,"
                " superseded = excluded.superseded",
                to_row(key),
            )
        except pg_errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "api_keys_name_held":
                raise DuplicateKeyName(key.name) from None
            raise
