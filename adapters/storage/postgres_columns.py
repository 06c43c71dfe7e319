"""The column index in the PostgreSQL store: the `latest_columns` table (migration 8), kept by
the snapshot writes of `adapters.storage.postgres` (a source's rows go with it by a cascade),
searched by `PostgresColumnIndex`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psycopg

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
    from adapters.storage.postgres import PostgresDatabase

Connection = psycopg.AsyncConnection[Any]

_INSERT = (
    f"INSERT INTO latest_columns ({LATEST_COLUMNS})"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::timestamptz)"
)


async def _fill(conn: Connection) -> None:
    """Index the newest snapshot of every source already stored."""
    cursor = await conn.execute(
        "SELECT DISTINCT ON (source_id) source_id, columns, observed_at FROM schema_snapshots"
        " ORDER BY source_id, sequence DESC"
    )
    for source_id, columns, observed_at in await cursor.fetchall():
        async with conn.cursor() as insert:
            await insert.executemany(_INSERT, stored_column_rows(source_id, columns, observed_at))


# The folded texts compare in code point order (COLLATE "C"), as Python's strings do: the
# index's order is the search's key order, and a prefix's range is a range of the index.
LATEST_COLUMNS_MIGRATION: tuple[str | Callable[[Connection], Awaitable[None]], ...] = (
    """
    CREATE TABLE latest_columns (
        source_id uuid NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
        position integer NOT NULL,
        folded_name text COLLATE "C" NOT NULL,
        name text NOT NULL,
        type text NOT NULL,
        folded_type text COLLATE "C" NOT NULL,
        nullable boolean,
        observed_at timestamptz NOT NULL,
        PRIMARY KEY (source_id, position)
    )
    """,
    "CREATE INDEX latest_columns_by_name ON latest_columns (folded_name, source_id, position)",
    _fill,
)
"""Migration 8: the index, filled from the histories already stored."""


async def replace_latest_columns(conn: Connection, snapshot: SchemaSnapshot) -> None:
    """Index this snapshot's columns in place of the source's older ones (inside the caller's
    transaction, which stores the snapshot)."""
    await conn.execute("DELETE FROM latest_columns WHERE source_id = %s", [snapshot.source_id])
    async with conn.cursor() as cursor:
        await cursor.executemany(_INSERT, column_rows(snapshot, lambda i: i, lambda at: at))


POSTGRES_COLUMNS = ColumnDialect(param="%s", ident=lambda i: i)


class PostgresColumnIndex:
    """Searches `latest_columns`, joined to `sources` for the current name and type."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def find(
        self, column_filter: ColumnFilter, limit: int, after: ColumnKey | None = None
    ) -> ColumnPage:
        sql, parameters = column_search(POSTGRES_COLUMNS, column_filter, limit, after)
        return column_page(await self._db.read_rows(sql, parameters), limit)
