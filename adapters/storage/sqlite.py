"""The SQLite store: one file in WAL mode, versioned migrations, safe for threads and processes.

Where the work runs: a read runs on the caller's event loop (in WAL mode a read never waits for
a writer, and the hop to a thread would cost more than the read: GET by id stays fast), but a
full listing, thousands of rows, goes to a thread. A write may wait for another process's lock
(the busy timeout), so every write runs on a thread; once begun, it runs to its end even if its
caller is cancelled.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncGenerator, Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import anyio.to_thread
import attrs
import sqlite_utils
from sqlite_utils.migrations import Migrations

from adapters.serialization import (
    decode_json,
    from_row,
    parse_timestamp,
    restored_source,
    timestamp,
    to_row,
)
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
from adapters.storage.source_query import Spelling, page_rows, whole_listing
from adapters.storage.sqlite_columns import (
    LATEST_COLUMNS_MIGRATION,
    forget_latest_columns,
    replace_latest_columns,
)
from adapters.storage.sqlite_watch_schema import WATCH_MIGRATION
from adapters.storage.webhook_schema import SQLITE_MIGRATION
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

Migration = tuple[str | Callable[[sqlite_utils.Database], None], ...]
"""A version's steps: statements, or functions of the connection (a fill needing Python)."""

MIGRATIONS: tuple[tuple[int, Migration], ...] = (
    (
        1,
        (
            """
            CREATE TABLE sources (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                source_type TEXT NOT NULL,
                connection TEXT NOT NULL,
                description TEXT NOT NULL,
                tags TEXT NOT NULL,
                registered_by TEXT NOT NULL,
                registered_at TEXT NOT NULL,
                status TEXT NOT NULL
            )
            """,
            "CREATE INDEX sources_by_registration ON sources (registered_at, id)",
            """
            CREATE TABLE api_keys (
                key_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                scopes TEXT NOT NULL,
                secret_hash TEXT NOT NULL,
                created_at TEXT NOT NULL,
                revoked_at TEXT
            )
            """,
            "CREATE INDEX api_keys_by_creation ON api_keys (created_at, key_id)",
        ),
    ),
    (
        2,
        (
            # The lifecycle: a version per source for conditional changes, and the audit trail.
            "ALTER TABLE sources ADD COLUMN version INTEGER NOT NULL DEFAULT 1",
            "ALTER TABLE sources ADD COLUMN updated_at TEXT",
            "ALTER TABLE sources ADD COLUMN updated_by TEXT",
            "UPDATE sources SET updated_at = registered_at, updated_by = registered_by",
            """
            CREATE TABLE events (
                id TEXT PRIMARY KEY,
                at TEXT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                source_id TEXT,
                source_name TEXT,
                key_id TEXT,
                changed TEXT NOT NULL,
                breaking INTEGER
            )
            """,
            "CREATE INDEX events_by_time ON events (at, id)",
            "CREATE INDEX events_by_source ON events (source_id, at, id)",
            # Keys made with every scope before audit:read existed were given every scope.
            """
            UPDATE api_keys SET scopes = '["audit:read", "sources:read", "sources:secrets",'
                || ' "sources:write"]'
             WHERE scopes = '["sources:read", "sources:secrets", "sources:write"]'
            """,
        ),
    ),
    (
        3,
        (
            # The primary key is the compare-and-set of concurrent inspections: of two that
            # would store the snapshot after the same one, exactly one can.
            """
            CREATE TABLE schema_snapshots (
                source_id TEXT NOT NULL,
                sequence INTEGER NOT NULL CHECK (sequence > 0),
                fingerprint TEXT NOT NULL,
                columns TEXT NOT NULL,
                observed_at TEXT NOT NULL,
                PRIMARY KEY (source_id, sequence)
            )
            """,
        ),
    ),
    (
        4,
        (
            # Listings by tag and by type walk an index in listing order (source_query.py);
            # the tags and the count are kept by triggers, in the transaction of each change.
            """
            CREATE TABLE source_tags (
                tag TEXT NOT NULL,
                registered_at TEXT NOT NULL,
                source_id TEXT NOT NULL,
                PRIMARY KEY (tag, registered_at, source_id)
            ) WITHOUT ROWID
            """,
            """
            INSERT OR IGNORE INTO source_tags
            SELECT tag.value, sources.registered_at, sources.id
              FROM sources, json_each(sources.tags) AS tag
            """,
            """
            CREATE TABLE source_count (one INTEGER PRIMARY KEY CHECK (one = 1), n INTEGER NOT NULL)
            """,
            "INSERT INTO source_count VALUES (1, (SELECT count(*) FROM sources))",
            """
            CREATE TRIGGER sources_added AFTER INSERT ON sources BEGIN
                INSERT OR IGNORE INTO source_tags
                SELECT value, NEW.registered_at, NEW.id FROM json_each(NEW.tags);
                UPDATE source_count SET n = n + 1;
            END
            """,
            """
            CREATE TRIGGER sources_retagged AFTER UPDATE OF tags ON sources
            WHEN OLD.tags IS NOT NEW.tags BEGIN
                DELETE FROM source_tags WHERE tag IN (SELECT value FROM json_each(OLD.tags))
                   AND registered_at = OLD.registered_at AND source_id = OLD.id;
                INSERT OR IGNORE INTO source_tags
                SELECT value, NEW.registered_at, NEW.id FROM json_each(NEW.tags);
            END
            """,
            """
            CREATE TRIGGER sources_removed AFTER DELETE ON sources BEGIN
                DELETE FROM source_tags WHERE tag IN (SELECT value FROM json_each(OLD.tags))
                   AND registered_at = OLD.registered_at AND source_id = OLD.id;
                UPDATE source_count SET n = n - 1;
            END
            """,
            "CREATE INDEX sources_by_type ON sources (source_type, registered_at, id)",
        ),
    ),
)
"""Every schema version and its statements, oldest first; a released version is never edited."""

MIGRATIONS += ((5, WATCH_MIGRATION),)
# Webhook endpoints and the outbox of their deliveries, filled by a trigger on events.
MIGRATIONS += ((6, SQLITE_MIGRATION),)

KEYS_MIGRATION: tuple[str, ...] = (
    # Keys people manage: who made each, when it expires, when it was last used (to the
    # minute), which key a rotation replaced, and whether a rotation took its name.
    "ALTER TABLE api_keys ADD COLUMN created_by TEXT",
    "ALTER TABLE api_keys ADD COLUMN expires_at TEXT",
    "ALTER TABLE api_keys ADD COLUMN last_used_at TEXT",
    "ALTER TABLE api_keys ADD COLUMN rotated_from TEXT",
    "ALTER TABLE api_keys ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0",
    """
        UPDATE api_keys SET created_by = COALESCE(
            (SELECT actor FROM events WHERE action = 'key.created'
              AND events.key_id = api_keys.key_id ORDER BY at LIMIT 1), 'tdb-cli')
        """,
    # Active keys that share a name (made before the store held the rule): the newest
    # keeps the name; the others keep working, as if a rotation had replaced them.
    """
        UPDATE api_keys SET superseded = 1
         WHERE revoked_at IS NULL AND EXISTS (
            SELECT 1 FROM api_keys AS newer
             WHERE newer.name = api_keys.name AND newer.revoked_at IS NULL
               AND (newer.created_at, newer.key_id) > (api_keys.created_at, api_keys.key_id))
        """,
    "CREATE UNIQUE INDEX api_keys_name_held ON api_keys (name)"
    " WHERE revoked_at IS NULL AND superseded = 0",
)
"""Keys people manage: who made each, when it expires, when it was last used (to the minute),
which key a rotation replaced, whether a rotation took its name (one holder per name)."""

MIGRATIONS += ((7, KEYS_MIGRATION),)
MIGRATIONS += ((8, LATEST_COLUMNS_MIGRATION),)

T = TypeVar("T")

WRITER_THREADS = 4
"""Threads that run one store's writes (one holds the write lock; the others queue for it)."""


def _migrations() -> Migrations:
    """`MIGRATIONS` as a sqlite-utils migration set, each version named by its number."""
    migrations = Migrations("tdb")
    for version, statements in MIGRATIONS:

        def migrate(db: sqlite_utils.Database, statements: Migration = statements) -> None:
            for statement in statements:
                if callable(statement):
                    statement(db)
                else:
                    db.execute(statement)

        migrations(name=str(version))(migrate)
    return migrations


def _adopt_versions_table(db: sqlite_utils.Database, migrations: Migrations) -> None:
    """Record as applied the versions that files written before sqlite-utils' migrations kept
    in their own `schema_migrations` table (left in place, and no longer written)."""
    if not db["schema_migrations"].exists():
        return
    migrations.ensure_migrations_table(db)
    db.execute(
        f"INSERT OR IGNORE INTO {Migrations.migrations_table} (migration_set, name, applied_at)"
        " SELECT ?, CAST(version AS TEXT), applied_at FROM schema_migrations",
        [migrations.name],
    )


_IDLE_CONNECTIONS_MAX = 8
_REMEMBERED_MAX = 1024

SQLITE = Dialect(param="?", timestamp_param="?", uuid_param="?", uuid_value=str)
# SQLite's planner is told the index to walk and the join order (the outer loop first).
SQLITE_WAYS = Spelling(
    SQLITE,
    indexed=lambda index: f" INDEXED BY {index}",
    # The index of the UNIQUE constraint on names (the id's primary key is the first).
    name_index="sqlite_autoindex_sources_2",
    joined="CROSS JOIN sources s",  # SQLite keeps a CROSS JOIN's order
    fence="",
)
LISTING_CHUNK = 2000
"""Rows of a whole listing read (and made summaries) at a time, on a thread."""


def _is_unavailability(exc: sqlite3.Error) -> bool:
    # Locked, unopenable, corrupt or unmigrated files; constraint and programming errors pass.
    return isinstance(exc, sqlite3.OperationalError | sqlite3.InternalError) or (
        type(exc) is sqlite3.DatabaseError
    )


class SqliteDatabase:
    """One SQLite file, shared by threads through a few connections, by processes through locks.

    Writes are serialized in this process by a lock and across processes by `BEGIN IMMEDIATE`,
    which waits up to `busy_timeout_ms` for another writer; reads run concurrently (WAL mode).
    Any failure to open, lock or read the file is raised as `StoreUnavailable`.
    """

    def __init__(self, path: str | Path, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._idle: list[sqlite_utils.Database] = []
        self._idle_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._watcher: sqlite_utils.Database | None = None
        self._watcher_lock = threading.Lock()
        self._closed = False
        self._in_use = 0
        self._watch = OutageWatch("sqlite")
        self._memo: tuple[int | None, dict[Hashable, Any]] = (None, {})
        # Writes wait for one another on `_write_lock` anyway: a few threads serve them all.
        self._writers = ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="tdb-sqlite-write")
        self._pending: set[asyncio.Future[Any]] = set()

    async def upgrade(self) -> list[int]:
        """Apply pending migrations in one write transaction; return the versions applied now."""
        return await anyio.to_thread.run_sync(self.migrate)

    def migrate(self) -> list[int]:
        """`upgrade`, on this thread."""
        migrations = _migrations()
        with self.writing() as db:
            # Inside BEGIN IMMEDIATE: of several processes upgrading one file, the first applies
            # every migration and the others find none pending (sqlite-utils nests a savepoint).
            _adopt_versions_table(db, migrations)
            pending = [int(m.name) for m in migrations.pending(db)]
            migrations.apply(db)
            return pending

    async def ping(self) -> None:
        """Return if the file can be opened and read; raise `StoreUnavailable` if not."""
        # Reads the schema page, so a file that is not a database fails here.
        self.read("SELECT count(*) FROM sqlite_master")

    def usage(self) -> tuple[int, int]:
        """Connections open (idle or in use), and those in use right now."""
        with self._idle_lock:
            return len(self._idle) + self._in_use, self._in_use

    async def written(self, write: Callable[..., T], *args: Any) -> T:
        """What `write(*args)` gives, run on a writer thread to its end even if the caller is
        cancelled: it is handed over before anything is awaited, and a cancelled caller stops
        waiting at once."""
        started = asyncio.get_running_loop().run_in_executor(self._writers, write, *args)
        self._pending.add(started)
        started.add_done_callback(self._ended)
        return await asyncio.shield(started)

    def _ended(self, write: asyncio.Future[Any]) -> None:
        self._pending.discard(write)
        if not write.cancelled():
            write.exception()  # retrieved: a caller that was cancelled no longer wants it

    async def release(self) -> None:
        """Return once the writes begun on the running loop have ended (nothing else is held
        per loop: the connections serve every thread)."""
        loop = asyncio.get_running_loop()
        pending = [write for write in self._pending if write.get_loop() is loop]
        if pending:
            await asyncio.wait(pending)

    def close(self) -> None:
        """Close every idle connection; connections in use close when they are given back."""
        with self._idle_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        with self._watcher_lock:
            if self._watcher is not None:
                idle.append(self._watcher)
                self._watcher = None
        for db in idle:
            db.close()

    @contextmanager
    def writing(self) -> Iterator[sqlite_utils.Database]:
        """A connection inside a write transaction, committed on success, rolled back on error."""
        try:
            with _unavailable_on_error(self.path), self._writer(), self._connection() as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.commit()
                except BaseException:
                    db.rollback()
                    raise
        except StoreUnavailable as exc:
            self._watch.failed(exc)
            raise
        self._watch.answered()

    def read(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row of one query, as dicts."""
        return self._query(sql, parameters, _as_dicts)

    def read_one(self, sql: str, parameters: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of one query, as a tuple in the order of its columns; None if none."""
        return self._query(sql, parameters, _first)

    def _query(
        self, sql: str, parameters: Sequence[Any], fetch: Callable[[sqlite3.Cursor], T]
    ) -> T:
        # The hot path of every read: no context managers, and straight to sqlite3, since
        # sqlite-utils' query() wraps each read in a savepoint (three statements instead of
        # one) only to refuse writes, and these are our own SELECTs.
        try:
            db = self._checkout()
            try:
                rows = fetch(db.conn.execute(sql, list(parameters)))
            finally:
                self._checkin(db)
        except sqlite3.Error as exc:
            if _is_unavailability(exc):
                unavailable = _unavailable(self.path, exc)
                self._watch.failed(unavailable)
                raise unavailable from exc
            raise
        self._watch.answered()
        return rows

    def data_version(self) -> int:
        """A number that changes whenever any connection, in any process, commits a change.

        SQLite's `PRAGMA data_version` counts the commits of *other* connections: asked on a
        connection of its own that never writes, it counts every commit.
        """
        try:
            with self._watcher_lock:
                if self._watcher is None:
                    with self._idle_lock:
                        if self._closed:
                            raise StoreUnavailable(f"the SQLite store {self.path} is closed")
                    self._watcher = self._open()
                row = self._watcher.conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error as exc:
            if _is_unavailability(exc):
                unavailable = _unavailable(self.path, exc)
                self._watch.failed(unavailable)
                raise unavailable from exc
            raise
        self._watch.answered()
        return int(row[0])

    def remembered(self, key: Hashable, read: Callable[[], T]) -> T:
        """What `read()` gives, read again only once the file has changed since it was read.

        For reads on the path of every request (GET by id): asking `data_version` costs a
        quarter of reading and restoring a source. A value is kept with the version asked
        before it was read, so it is never older than that version, and it is used only while
        the version stays the same (no commit by any connection of any process since).
        At most `_REMEMBERED_MAX` values are kept; None is never kept.
        """
        version = self.data_version()
        # One attribute for the version and its values: a thread that saw another version
        # keeps its values apart, whatever the order in which threads get here.
        memo = self._memo
        if memo[0] != version:
            memo = self._memo = (version, {})
        value: T | None = memo[1].get(key)
        if value is None:
            value = read()
            if len(memo[1]) >= _REMEMBERED_MAX:
                memo[1].clear()
            memo[1][key] = value
        return value

    def read_rows(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of one query, as tuples in the order of its columns (for big reads)."""
        try:
            db = self._checkout()
            try:
                return db.conn.execute(sql, list(parameters)).fetchall()
            finally:
                self._checkin(db)
        except sqlite3.Error as exc:
            if _is_unavailability(exc):
                raise _unavailable(self.path, exc) from exc
            raise

    @contextmanager
    def statement(
        self, sql: str, parameters: Sequence[Any] = ()
    ) -> Iterator[Callable[[int], list[tuple[Any, ...]]]]:
        """One query on a connection of its own while the block runs: a function that gives
        its next rows, at most so many at a time ([] at the end), from any one thread at a time."""
        db = self._checkout()
        cursor: sqlite3.Cursor | None = None

        def next_rows(size: int) -> list[tuple[Any, ...]]:
            nonlocal cursor
            with _unavailable_on_error(self.path):
                if cursor is None:
                    cursor = db.conn.execute(sql, list(parameters))
                return cursor.fetchmany(size)

        try:
            yield next_rows
        finally:
            if cursor is not None:
                cursor.close()
            self._checkin(db)

    @contextmanager
    def _writer(self) -> Iterator[None]:
        # Queued writers of this process wait no longer than one waiting on another process.
        if not self._write_lock.acquire(timeout=self.busy_timeout_ms / 1000):
            raise StoreUnavailable(f"the SQLite store {self.path} is busy with other writes")
        try:
            yield
        finally:
            self._write_lock.release()

    @contextmanager
    def _connection(self) -> Iterator[sqlite_utils.Database]:
        db = self._checkout()
        try:
            yield db
        finally:
            self._checkin(db)

    def _checkout(self) -> sqlite_utils.Database:
        with self._idle_lock:
            if self._closed:
                raise StoreUnavailable(f"the SQLite store {self.path} is closed")
            db = self._idle.pop() if self._idle else None
            self._in_use += 1
        if db is not None:
            return db
        try:
            return self._open()
        except BaseException:
            with self._idle_lock:
                self._in_use -= 1
            raise

    def _checkin(self, db: sqlite_utils.Database) -> None:
        with self._idle_lock:
            self._in_use -= 1
            keep = not self._closed and len(self._idle) < _IDLE_CONNECTIONS_MAX
            if keep:
                self._idle.append(db)
        if not keep:
            db.close()

    def _open(self) -> sqlite_utils.Database:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_ms / 1000, check_same_thread=False
        )
        try:
            db = sqlite_utils.Database(conn, execute_plugins=False)
            self._enable_wal(db)
            # With WAL, NORMAL loses no committed data when the process crashes, only on power loss.
            db.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return db

    def _enable_wal(self, db: sqlite_utils.Database) -> None:
        # Switching a new file to WAL fails at once, without the busy handler, while another
        # connection is switching it too: retry until the busy timeout, as any lock wait would.
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                db.enable_wal()
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(0.005)


@contextmanager
def _unavailable_on_error(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        if _is_unavailability(exc):
            raise _unavailable(path, exc) from exc
        raise


def _unavailable(path: Path, exc: sqlite3.Error) -> StoreUnavailable:
    return StoreUnavailable(f"the SQLite store {path} cannot be used: {exc}")


# The columns SQLite keeps as JSON text.
_SOURCE_JSON = ("connection", "tags")
_KEY_JSON = ("scopes",)
_EVENT_JSON = ("changed",)
_SNAPSHOT_JSON = ("columns",)


class SqliteSourceRepository:
    """Sources in the `sources` table; names unique by a UNIQUE constraint (exact match)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def add(self, source: Source, event: Event | None = None) -> None:
        await self._db.written(self._add, source, event)

    async def update(
        self, source: Source, expected_version: int, event: Event | None = None
    ) -> None:
        await self._db.written(self._update, source, expected_version, event)

    async def remove(
        self, source_id: UUID, expected_version: int | None = None, event: Event | None = None
    ) -> None:
        await self._db.written(self._remove, source_id, expected_version, event)

    def _add(self, source: Source, event: Event | None) -> None:
        try:
            with self._db.writing() as db:
                insert_source(db, source, event)
        except sqlite3.IntegrityError as exc:
            if "sources.name" in str(exc):
                raise DuplicateSourceName(source.name.value) from None
            raise

    def _update(self, source: Source, expected_version: int, event: Event | None) -> None:
        row = to_row(source, _SOURCE_JSON)
        try:
            with self._db.writing() as db:
                changed = db.execute(
                    "UPDATE sources SET name = :name, connection = :connection,"
                    " description = :description, tags = :tags, status = :status,"
                    " version = :version, updated_at = :updated_at, updated_by = :updated_by"
                    " WHERE id = :id AND version = :expected",
                    {**row, "expected": expected_version},
                ).rowcount
                if not changed:
                    _mismatch(db, source.id)
                _record(db, event)
        except sqlite3.IntegrityError as exc:
            if "sources.name" in str(exc):
                raise DuplicateSourceName(source.name.value) from None
            raise

    async def get(self, source_id: UUID) -> Source:
        # A source is immutable: one read since the file last changed serves as it is.
        return self._db.remembered(source_id, lambda: self._get(source_id))

    def _get(self, source_id: UUID) -> Source:
        row = self._db.read_one(
            f"SELECT {SOURCE_COLUMNS} FROM sources WHERE id = ?", [str(source_id)]
        )
        if row is None:
            raise SourceNotFound(source_id)
        # The row's id is the one asked for: no need to parse it back.
        return restored_source((source_id, *row[1:]))

    async def list(
        self, source_filter: SourceFilter, limit: int | None = None, after: PageKey | None = None
    ) -> SourcePage:
        if limit is not None and limit <= INLINE_PAGE_MAX:
            return self._list(source_filter, limit, after)
        # Thousands of rows would hold the event loop for tens of milliseconds.
        return await anyio.to_thread.run_sync(
            self._list, source_filter, limit, after, abandon_on_cancel=True
        )

    def _list(
        self, source_filter: SourceFilter, limit: int | None, after: PageKey | None
    ) -> SourcePage:
        if not can_match(source_filter):
            return SourcePage(())
        steps = page_rows(SQLITE_WAYS, source_filter, limit, after)
        try:
            query = next(steps)
            while True:
                query = steps.send(self._db.read_rows(*query))
        except StopIteration as done:
            rows = done.value
        return page(_summaries(rows), limit)

    async def chunks(
        self, source_filter: SourceFilter, size: int | None = None
    ) -> AsyncGenerator[Sequence[SourceSummary], None]:
        if not can_match(source_filter):
            return
        # One statement on one connection, stepped a chunk at a time on a thread: a snapshot
        # of the registry, held in memory a chunk at a time.
        with self._db.statement(*whole_listing(SQLITE_WAYS, source_filter)) as next_rows:
            while rows := await anyio.to_thread.run_sync(next_rows, size or LISTING_CHUNK):
                yield await anyio.to_thread.run_sync(_summaries, rows)

    async def revision(self) -> int | None:
        return self._db.data_version()

    def _remove(self, source_id: UUID, expected_version: int | None, event: Event | None) -> None:
        sql = "DELETE FROM sources WHERE id = ?"
        parameters: list[Any] = [str(source_id)]
        if expected_version is not None:
            sql += " AND version = ?"
            parameters.append(expected_version)
        with self._db.writing() as db:
            deleted = db.execute(sql + " RETURNING name", parameters).fetchall()
            if not deleted:
                _mismatch(db, source_id)
            # SQLite enforces no foreign keys here: the history goes by hand, in this transaction.
            db.execute("DELETE FROM schema_snapshots WHERE source_id = ?", [str(source_id)])
            forget_latest_columns(db, str(source_id))
            if event is not None:
                _record(db, attrs.evolve(event, source_name=deleted[0][0]))

    async def count(self) -> int:
        # Kept by the triggers of every add and removal: a count(*) reads a whole index.
        row = self._db.read_one("SELECT n FROM source_count")
        return int(row[0]) if row is not None else 0


def _summaries(rows: Sequence[tuple[Any, ...]]) -> list[SourceSummary]:
    """Straight from row tuples to summaries: a whole listing is a million rows and more."""
    summary, uuid, tags_of, time_of = SourceSummary, UUID, decode_json, parse_timestamp
    return [
        summary(uuid(source_id), name, source_type, description, tuple(tags_of(tags)), time_of(at))
        for source_id, name, source_type, description, tags, at in rows
    ]


def insert_source(db: sqlite_utils.Database, source: Source, event: Event | None) -> None:
    """Insert the source and its event inside the caller's write transaction."""
    db.execute(
        f"INSERT INTO sources ({SOURCE_COLUMNS}) VALUES (:id, :name, :source_type,"
        " :connection, :description, :tags, :registered_by, :registered_at, :status,"
        " :version, :updated_at, :updated_by)",
        to_row(source, _SOURCE_JSON),
    )
    _record(db, event)


def _first(cursor: sqlite3.Cursor) -> tuple[Any, ...] | None:
    # Every row is read, so the statement is done (and its read transaction over) at once.
    rows = cursor.fetchall()
    return rows[0] if rows else None


def _as_dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _mismatch(db: sqlite_utils.Database, source_id: UUID) -> None:
    """Raise why a conditional change matched no row: no such source, or another version."""
    row = db.execute("SELECT version FROM sources WHERE id = ?", [str(source_id)]).fetchone()
    if row is None:
        raise SourceNotFound(source_id)
    raise VersionMismatch(source_id, row[0])


def _record(db: sqlite_utils.Database, event: Event | None) -> None:
    """Append the event inside the caller's write transaction."""
    if event is None:
        return
    db.execute(
        f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (:id, :at, :actor, :action, :source_id,"
        " :source_name, :key_id, :changed, :breaking, :reason, :webhook_id)",
        to_row(event, _EVENT_JSON),
    )


class SqliteEventRepository:
    """The audit trail in the `events` table."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def append(self, event: Event) -> None:
        await self._db.written(self._append, event)

    def _append(self, event: Event) -> None:
        with self._db.writing() as db:
            _record(db, event)

    async def list(
        self, event_filter: EventFilter, limit: int | None = None, after: EventKey | None = None
    ) -> EventPage:
        if event_filter.actor is not None and not storable(event_filter.actor):
            return EventPage(())
        sql, parameters = event_listing(SQLITE, event_filter, limit, after)
        rows = self._db.read(sql, parameters)
        return event_page([from_row(row, Event) for row in rows], limit)


class SqliteSnapshotRepository:
    """Snapshots in the `schema_snapshots` table, keyed by (source, sequence)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def head(self, source_id: UUID) -> SnapshotHead | None:
        rows = self._db.read(
            "SELECT sequence, fingerprint FROM schema_snapshots WHERE source_id = ?"
            " ORDER BY sequence DESC LIMIT 1",
            [str(source_id)],
        )
        return SnapshotHead(rows[0]["sequence"], rows[0]["fingerprint"]) if rows else None

    async def latest(self, source_id: UUID) -> SchemaSnapshot | None:
        found = await self.newest_first(source_id, 1)
        return found[0] if found else None

    async def append(self, snapshot: SchemaSnapshot, event: Event | None = None) -> bool:
        return await self._db.written(self._append, snapshot, event)

    def _append(self, snapshot: SchemaSnapshot, event: Event | None) -> bool:
        source_id = str(snapshot.source_id)
        # BEGIN IMMEDIATE holds every other writer back from the checks to the insert.
        with self._db.writing() as db:
            exists = db.execute("SELECT EXISTS (SELECT 1 FROM sources WHERE id = ?)", [source_id])
            if not exists.fetchone()[0]:
                raise SourceNotFound(snapshot.source_id)
            newest = db.execute(
                "SELECT coalesce(max(sequence), 0) FROM schema_snapshots WHERE source_id = ?",
                [source_id],
            ).fetchone()[0]
            if newest != snapshot.sequence - 1:
                return False
            db.execute(
                f"INSERT INTO schema_snapshots ({SNAPSHOT_COLUMNS}) VALUES (:source_id,"
                " :sequence, :fingerprint, :columns, :observed_at)",
                to_row(snapshot, _SNAPSHOT_JSON),
            )
            replace_latest_columns(db, snapshot)
            _record(db, event)
            return True

    async def newest_first(
        self, source_id: UUID, limit: int, before: int | None = None
    ) -> Sequence[SchemaSnapshot]:
        rows = self._db.read(
            f"SELECT {SNAPSHOT_COLUMNS} FROM schema_snapshots"
            " WHERE source_id = ? AND sequence < ? ORDER BY sequence DESC LIMIT ?",
            [str(source_id), before if before is not None else 2**62, limit],
        )
        return [from_row(row, SchemaSnapshot) for row in rows]


class SqliteApiKeyRepository:
    """API keys in the `api_keys` table."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def add(self, key: ApiKey, event: Event | None = None) -> None:
        await self._db.written(self._add, key, event)

    async def add_if_none(self, key: ApiKey, event: Event | None = None) -> bool:
        return await self._db.written(self._add_if_none, key, event)

    async def revoke(self, key_id: str, at: datetime, event: Event | None = None) -> ApiKey:
        return await self._db.written(self._revoke, key_id, at, event)

    def _add(self, key: ApiKey, event: Event | None) -> None:
        with self._db.writing() as db:
            self._insert(db, key)
            _record(db, event)

    def _add_if_none(self, key: ApiKey, event: Event | None) -> bool:
        # BEGIN IMMEDIATE holds the write lock from the check to the insert, across processes too.
        with self._db.writing() as db:
            if db.execute("SELECT EXISTS (SELECT 1 FROM api_keys)").fetchone()[0]:
                return False
            self._insert(db, key)
            _record(db, event)
            return True

    async def get(self, key_id: str) -> ApiKey:
        rows = (
            self._db.read(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?", [key_id])
            if storable(key_id)
            else []
        )
        if not rows:
            raise ApiKeyNotFound(key_id)
        return from_row(rows[0], ApiKey)

    async def list(self) -> Sequence[ApiKey]:
        rows = self._db.read(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
        return [from_row(row, ApiKey) for row in rows]

    def _revoke(self, key_id: str, at: datetime, event: Event | None) -> ApiKey:
        if not storable(key_id):
            raise ApiKeyNotFound(key_id)
        with self._db.writing() as db:
            revoked = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                [timestamp(at), key_id],
            ).rowcount
            if revoked:
                _record(db, event)
            rows = list(db.query(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_id = ?", [key_id]))
        if not rows:
            raise ApiKeyNotFound(key_id)
        return from_row(rows[0], ApiKey)

    async def rotate(
        self, old_key_id: str, old_expires_at: datetime, new: ApiKey, events: Sequence[Event]
    ) -> None:
        await self._db.written(self._rotate, old_key_id, old_expires_at, new, events)

    def _rotate(
        self, old_key_id: str, old_expires_at: datetime, new: ApiKey, events: Sequence[Event]
    ) -> None:
        if not storable(old_key_id):
            raise ApiKeyNotFound(old_key_id)
        with self._db.writing() as db:
            handed = db.execute(
                "UPDATE api_keys SET superseded = 1, expires_at = ?"
                " WHERE key_id = ? AND revoked_at IS NULL AND superseded = 0",
                [timestamp(old_expires_at), old_key_id],
            ).rowcount
            if not handed:
                found = db.execute(
                    "SELECT revoked_at FROM api_keys WHERE key_id = ?", [old_key_id]
                ).fetchone()
                if found is None:
                    raise ApiKeyNotFound(old_key_id)
                raise KeyNotRotatable(old_key_id, "revoked" if found[0] else "already rotated")
            self._insert(db, new)
            for event in events:
                _record(db, event)

    async def touch(self, uses: Mapping[str, datetime]) -> None:
        await self._db.written(self._touch, uses)

    def _touch(self, uses: Mapping[str, datetime]) -> None:
        rows = [(timestamp(at), key_id, timestamp(at)) for key_id, at in uses.items()]
        with self._db.writing() as db:
            db.conn.executemany(
                "UPDATE api_keys SET last_used_at = ? WHERE key_id = ?"
                " AND (last_used_at IS NULL OR last_used_at < ?)",
                rows,
            )

    @staticmethod
    def _insert(db: sqlite_utils.Database, key: ApiKey) -> None:
        # A key stored again under its id replaces the old one, as the in-memory store does;
        # a name held by another key is refused by the index (not replaced, as OR REPLACE would).
        try:
            db.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (:key_id, :name, :scopes,"
                " :secret_hash, :created_at, :revoked_at, :created_by, :expires_at,"
                " :last_used_at, :rotated_from, :superseded) ON CONFLICT (key_id) DO UPDATE SET"
                f" ({KEY_COLUMNS}) = (excluded.key_id, excluded.name, excluded.scopes,"
                " excluded.secret_hash, excluded.created_at, excluded.revoked_at,"
                " excluded.created_by, excluded.expires_at, excluded.last_used_at,"
                " excluded.rotated_from, excluded.superseded)",
                to_row(key, _KEY_JSON),
            )
        except sqlite3.IntegrityError as exc:
            if "api_keys.name" in str(exc):
                raise DuplicateKeyName(key.name) from None
            raise
