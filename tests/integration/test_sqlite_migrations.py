"""SQLite migrations run through sqlite-utils' migration sets: a file written before them, with
its versions in the old `schema_migrations` table, is recognised and not migrated twice."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

from adapters.storage import sqlite
from adapters.storage.sqlite import SqliteDatabase, SqliteSourceRepository
from domain.sources import SourceFilter
from tests.helpers import Synced


def _old_style_file(path: Path, versions: int) -> None:
    """A file as the versions before migration sets left it: the first migrations applied by
    hand and recorded in `schema_migrations`, with one source row written in that schema."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        for version, statements in sqlite.MIGRATIONS[:versions]:
            for statement in statements:
                if callable(statement):  # a fill in Python, on the same connection
                    statement(sqlite_utils.Database(conn))
                else:
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, '2026-05-22T09:00:00.000000Z')",
                [version],
            )
        conn.execute(
            "INSERT INTO sources (id, name, source_type, connection, description, tags,"
            " registered_by, registered_at, status) VALUES ('00000000-0000-0000-0000-000000000001',"
            " 'orders', 'csv', '{\"path\": \"orders.csv\"}', '', '[\"caf\\u00e9\"]', 'tdb-cli',"
            " '2026-05-22T09:00:00+00:00', 'active')"
        )
    finally:
        conn.close()


def test_a_file_migrated_by_the_old_loop_applies_only_the_versions_it_lacks(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tdb.db"
    _old_style_file(path, versions=1)
    db = Synced(SqliteDatabase(path))
    try:
        later = [version for version, _ in sqlite.MIGRATIONS[1:]]
        assert db.upgrade() == later
        assert db.upgrade() == []
        (summary,) = Synced(SqliteSourceRepository(db.target)).list(SourceFilter()).sources
        assert summary.name == "orders"
        assert summary.tags == ("caf\u00e9",)
        source = Synced(SqliteSourceRepository(db.target)).get(summary.id)
        assert source.version == 1
        assert source.updated_at == source.registered_at
    finally:
        db.close()


def test_a_fully_migrated_old_file_applies_nothing(tmp_path: Path) -> None:
    path = tmp_path / "tdb.db"
    _old_style_file(path, versions=len(sqlite.MIGRATIONS))
    db = Synced(SqliteDatabase(path))
    try:
        assert db.upgrade() == []
        assert Synced(SqliteSourceRepository(db.target)).count() == 1
    finally:
        db.close()
