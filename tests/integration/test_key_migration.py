"""Migration 7 on a store written before it: who made each key comes from its `key.created`
event (else the operator), and of active keys sharing a name only the newest keeps it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from adapters.storage import sqlite
from adapters.storage.sqlite import SqliteApiKeyRepository, SqliteDatabase
from tests.helpers import Synced

_KEY = (
    "INSERT INTO api_keys (key_id, name, scopes, secret_hash, created_at, revoked_at)"
    """ VALUES (?, ?, '["sources:read"]', ?, ?, ?)"""
)


def test_keys_written_before_migration_7_read_back_with_their_maker_and_one_name_holder(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tdb.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        for version, statements in sqlite.MIGRATIONS:
            if version > 3:
                break
            for statement in statements:
                assert isinstance(statement, str)  # the first versions are plain SQL
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, '2026-05-22T09:00:00Z')", [version]
            )
        hash_ = "ab" * 32
        day = "2026-05-2{}T09:00:00.000000Z".format
        conn.execute(_KEY, ["old", "ci", hash_, day(2), None])
        conn.execute(_KEY, ["new", "ci", hash_, day(3), None])
        conn.execute(_KEY, ["gone", "ci", hash_, day(4), day(5)])
        conn.execute(
            "INSERT INTO events (id, at, actor, action, key_id, changed) VALUES"
            " ('00000000-0000-0000-0000-000000000001', '2026-05-23T09:00:00.000000Z',"
            " 'tdbk_0123456789abcdef', 'key.created', 'new', '[]')"
        )
    finally:
        conn.close()
    db = Synced(SqliteDatabase(path))
    try:
        assert 7 in db.upgrade()
        keys = {k.key_id: k for k in Synced(SqliteApiKeyRepository(db.target)).list()}
        assert {k: (v.superseded, v.created_by) for k, v in keys.items()} == {
            "old": (True, "tdb-cli"),
            "new": (False, "tdbk_0123456789abcdef"),
            "gone": (False, "tdb-cli"),
        }
        assert all(k.expires_at is None and k.last_used_at is None for k in keys.values())
    finally:
        db.close()
