"""Schema version 5 of the SQLite store: watches, their leases, and the audit trail's `reason`."""

from __future__ import annotations

WATCH_MIGRATION: tuple[str, ...] = (
    # One watch per source. `lease_token`/`lease_until`: the process running its check, and
    # until when; another may take the check over once that time has passed.
    """
    CREATE TABLE source_watches (
        source_id TEXT PRIMARY KEY,
        interval_seconds INTEGER NOT NULL,
        anchor_at TEXT NOT NULL,
        next_check_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        last_checked_at TEXT,
        last_outcome TEXT,
        last_reason TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        lease_token TEXT,
        lease_until TEXT
    )
    """,
    "CREATE INDEX source_watches_by_due ON source_watches (next_check_at, source_id)",
    # SQLite enforces no foreign keys here: the watch goes with its source by a trigger, in the
    # statement that deletes the source.
    """
    CREATE TRIGGER source_watches_go_with_sources AFTER DELETE ON sources
    BEGIN
        DELETE FROM source_watches WHERE source_id = old.id;
    END
    """,
    # A changed connection makes the check due at once, in the transaction that changes it.
    """
    CREATE TRIGGER source_watches_due_on_new_connection AFTER UPDATE OF connection ON sources
    WHEN old.connection IS NOT new.connection
    BEGIN
        UPDATE source_watches SET anchor_at = new.updated_at, next_check_at = new.updated_at
         WHERE source_id = new.id;
    END
    """,
    "ALTER TABLE events ADD COLUMN reason TEXT",
)
"""The statements of version 5, in order."""
