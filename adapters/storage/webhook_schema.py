"""The webhook tables of the SQL stores (migration 6), and their outbox: a trigger on `events`.

Every event, whichever repository writes it, is inserted into `events`; the trigger adds, in
that same transaction, one pending delivery for every enabled endpoint the event matches then
(`domain.webhooks.Endpoint.matches`, restated in SQL). So no acknowledged act loses its
notification, and no code path that records an event can forget the outbox. A deleted source's
tags are kept by a trigger on `sources` for the moment its `source.deleted` event is matched.
"""

from __future__ import annotations

SQLITE_UUID = (
    "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4'"
    " || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1)"
    " || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"
)

SQLITE_MIGRATION: tuple[str, ...] = (
    "ALTER TABLE events ADD COLUMN webhook_id TEXT",
    """
    CREATE TABLE webhook_endpoints (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        breaking_only INTEGER NOT NULL,
        source_ids TEXT NOT NULL,
        tags TEXT NOT NULL,
        description TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        disabled_reason TEXT,
        secrets TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX webhook_endpoints_by_creation ON webhook_endpoints (created_at, id)",
    """
    CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        endpoint_id TEXT NOT NULL,
        event_id TEXT,
        type TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts TEXT NOT NULL DEFAULT '[]',
        round_attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        created_at TEXT NOT NULL,
        body BLOB,
        lease_owner TEXT,
        lease_until TEXT
    )
    """,
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)"
    " WHERE state = 'pending'",
    "CREATE INDEX webhook_deliveries_by_endpoint"
    " ON webhook_deliveries (endpoint_id, created_at, id)",
    "CREATE TABLE webhook_departed_tags (source_id TEXT PRIMARY KEY, tags TEXT NOT NULL)",
    """
    CREATE TRIGGER webhook_departed AFTER DELETE ON sources BEGIN
        INSERT OR REPLACE INTO webhook_departed_tags (source_id, tags) VALUES (OLD.id, OLD.tags);
    END
    """,
    f"""
    CREATE TRIGGER webhook_outbox AFTER INSERT ON events BEGIN
        INSERT INTO webhook_deliveries
            (id, endpoint_id, event_id, type, state, next_attempt_at, created_at)
        SELECT {SQLITE_UUID}, w.id, NEW.id, NEW.action, 'pending', NEW.at, NEW.at
          FROM webhook_endpoints w
         WHERE w.enabled
           AND EXISTS (SELECT 1 FROM json_each(w.events) WHERE value IN ('*', NEW.action))
           AND NOT (w.breaking_only AND NEW.action = 'source.schema_changed'
                    AND coalesce(NEW.breaking, 0) = 0)
           AND (NEW.source_id IS NULL
                OR (w.source_ids = '[]' AND w.tags = '[]')
                OR EXISTS (SELECT 1 FROM json_each(w.source_ids) WHERE value = NEW.source_id)
                OR EXISTS (
                    SELECT 1 FROM json_each(w.tags) wanted,
                           json_each(coalesce(
                               (SELECT tags FROM sources WHERE id = NEW.source_id),
                               (SELECT tags FROM webhook_departed_tags
                                 WHERE source_id = NEW.source_id),
                               '[]')) carried
                     WHERE wanted.value = carried.value));
        DELETE FROM webhook_departed_tags
         WHERE NEW.action = 'source.deleted' AND source_id = NEW.source_id;
    END
    """,
)

POSTGRES_MIGRATION: tuple[str, ...] = (
    "ALTER TABLE events ADD COLUMN webhook_id uuid",
    """
    CREATE TABLE webhook_endpoints (
        id uuid PRIMARY KEY,
        url text NOT NULL,
        events text[] NOT NULL,
        breaking_only boolean NOT NULL,
        source_ids uuid[] NOT NULL,
        tags text[] NOT NULL,
        description text NOT NULL,
        enabled boolean NOT NULL,
        disabled_reason text,
        secrets json NOT NULL,
        created_at timestamptz NOT NULL,
        created_by text NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX webhook_endpoints_by_creation ON webhook_endpoints (created_at, id)",
    """
    CREATE TABLE webhook_deliveries (
        id uuid PRIMARY KEY,
        endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
        event_id uuid,
        type text NOT NULL,
        state text NOT NULL,
        attempts json NOT NULL DEFAULT '[]',
        round_attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz,
        created_at timestamptz NOT NULL,
        body bytea,
        lease_owner text,
        lease_until timestamptz
    )
    """,
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)"
    " WHERE state = 'pending'",
    "CREATE INDEX webhook_deliveries_by_endpoint"
    " ON webhook_deliveries (endpoint_id, created_at, id)",
    "CREATE TABLE webhook_departed_tags (source_id uuid PRIMARY KEY, tags text[] NOT NULL)",
    """
    CREATE FUNCTION webhook_departed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO webhook_departed_tags (source_id, tags) VALUES (OLD.id, OLD.tags)
            ON CONFLICT (source_id) DO UPDATE SET tags = EXCLUDED.tags;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER webhook_departed AFTER DELETE ON sources
        FOR EACH ROW EXECUTE FUNCTION webhook_departed()
    """,
    """
    CREATE FUNCTION webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        carried text[];
    BEGIN
        IF NEW.source_id IS NOT NULL THEN
            carried := coalesce(
                (SELECT tags FROM sources WHERE id = NEW.source_id),
                (SELECT tags FROM webhook_departed_tags WHERE source_id = NEW.source_id),
                '{}');
        END IF;
        INSERT INTO webhook_deliveries
            (id, endpoint_id, event_id, type, state, next_attempt_at, created_at)
        SELECT gen_random_uuid(), w.id, NEW.id, NEW.action, 'pending', NEW.at, NEW.at
          FROM webhook_endpoints w
         WHERE w.enabled
           AND ('*' = ANY (w.events) OR NEW.action = ANY (w.events))
           AND NOT (w.breaking_only AND NEW.action = 'source.schema_changed'
                    AND NEW.breaking IS NOT TRUE)
           AND (NEW.source_id IS NULL
                OR (cardinality(w.source_ids) = 0 AND cardinality(w.tags) = 0)
                OR NEW.source_id = ANY (w.source_ids)
                OR w.tags && carried);
        IF NEW.action = 'source.deleted' THEN
            DELETE FROM webhook_departed_tags WHERE source_id = NEW.source_id;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER webhook_outbox AFTER INSERT ON events
        FOR EACH ROW EXECUTE FUNCTION webhook_outbox()
    """,
)
