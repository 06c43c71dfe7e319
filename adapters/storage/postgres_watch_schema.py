"""Schema version 5 of the PostgreSQL store: watches, their leases, and the audit trail's
`reason`."""

from __future__ import annotations

WATCH_MIGRATION: tuple[str, ...] = (
    # One watch per source, gone with it (the foreign key). `lease_token`/`lease_until`: the
    # process running its check, and until when; another may take it over after that time.
    """
    CREATE TABLE source_watches (
        source_id uuid PRIMARY KEY REFERENCES sources (id) ON DELETE CASCADE,
        interval_seconds integer NOT NULL,
        anchor_at timestamptz NOT NULL,
        next_check_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL,
        created_by text NOT NULL,
        last_checked_at timestamptz,
        last_outcome text,
        last_reason text,
        consecutive_failures integer NOT NULL DEFAULT 0,
        lease_token uuid,
        lease_until timestamptz
    )
    """,
    "CREATE INDEX source_watches_by_due ON source_watches (next_check_at, source_id)",
    # A changed connection makes the check due at once, in the statement that changes it.
    """
    CREATE FUNCTION source_watches_due_on_new_connection() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE source_watches SET anchor_at = NEW.updated_at, next_check_at = NEW.updated_at
         WHERE source_id = NEW.id;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER source_watches_due_on_new_connection AFTER UPDATE OF connection ON sources
    FOR EACH ROW WHEN (OLD.connection::text IS DISTINCT FROM NEW.connection::text)
    EXECUTE FUNCTION source_watches_due_on_new_connection()
    """,
    "ALTER TABLE events ADD COLUMN reason text",
)
"""The statements of version 5, in order."""
