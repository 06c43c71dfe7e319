"""The column index in the SQLite store: the `latest_columns` table (migration 8), kept by the
snapshot and source writes of `adapters.storage.sqlite`, searched by `SqliteColumnIndex`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.to_thread
import sqlite_utils

from adapters.serialization import timestamp
from adapters.storage.columns import (
    LATEST_COLUMNS,
    ColumnDialect,
    column_page,
    column_rows,
    column_search,
    stored_column_rows,
)
from domain.columns import ColumnFilter, ColumnKey, ColumnPage
from domain.history import SchemaSnapshot

if TYPE_CHECKING:
    from adapters.storage.sqlite import SqliteDatabase

_INSERT = f"INSERT INTO latest_columns ({LATEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def _fill(db: sqlite_utils.Database) -> None:
    """Index the newest snapshot of every source already stored."""
    newest = db.execute(
        "SELECT s.source_id, s.columns, s.observed_at FROM schema_snapshots s"
        " JOIN (SELECT source_id, max(sequence) AS sequence FROM schema_snapshots"
        " GROUP BY source_id) n ON n.source_id = s.source_id AND n.sequence = s.sequence"
    ).fetchall()
    for source_id, columns, observed_at in newest:
        db.conn.executemany(_INSERT, stored_column_rows(source_id, columns, observed_at))


LATEST_COLUMNS_MIGRATION = (
    """
    CREATE TABLE latest_columns (
        source_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        folded_name TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        folded_type TEXT NOT NULL,
        nullable INTEGER,
        observed_at TEXT NOT NULL,
        PRIMARY KEY (source_id, position)
    )
    """,
    "CREATE INDEX latest_columns_by_name ON latest_columns (folded_name, source_id, position)",
    _fill,
)
"""Migration 8: the index, filled from the histories already stored."""


def replace_latest_columns(db: sqlite_utils.Database, snapshot: SchemaSnapshot) -> None:
    """Index this snapshot's columns in place of the source's older ones (inside the caller's
    write transaction, which stores the snapshot)."""
    db.execute("DELETE FROM latest_columns WHERE source_id = ?", [str(snapshot.source_id)])
    db.conn.executemany(_INSERT, column_rows(snapshot, str, timestamp))


def forget_latest_columns(db: sqlite_utils.Database, source_id: str) -> None:
    """Drop a removed source's columns (inside the transaction that removes it)."""
    db.execute("DELETE FROM latest_columns WHERE source_id = ?", [source_id])


SQLITE_COLUMNS = ColumnDialect(param="?", ident=str)

# Pages up to this size are read on the caller's event loop (WAL: a read never waits).
_INLINE_LIMIT = 100


class SqliteColumnIndex:
    """Searches `latest_columns`, joined to `sources` for the current name and type."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def find(
        self, column_filter: ColumnFilter, limit: int, after: ColumnKey | None = None
    ) -> ColumnPage:
        if limit <= _INLINE_LIMIT:
            return self._find(column_filter, limit, after)
        return await anyio.to_thread.run_sync(
            self._find, column_filter, limit, after, abandon_on_cancel=True
        )

    def _find(self, column_filter: ColumnFilter, limit: int, after: ColumnKey | None) -> ColumnPage:
        sql, parameters = column_search(SQLITE_COLUMNS, column_filter, limit, after)
        return column_page(self._db.read_rows(sql, parameters), limit)
