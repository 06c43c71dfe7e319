"""Webhook endpoints and the outbox of deliveries in the PostgreSQL store.

The outbox is filled by the `webhook_outbox` trigger (see `webhook_schema`). Replicas claim due
deliveries with `FOR UPDATE SKIP LOCKED` and a lease written on the row: a claim never waits
for another, no two hold one delivery, and a dead replica's lease lapses for the next claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row

from adapters.serialization import from_row
from adapters.storage.group_commit import GroupCommit
from adapters.storage.listing import EVENT_COLUMNS, SNAPSHOT_COLUMNS
from adapters.storage.postgres import PostgresDatabase, _record
from adapters.storage.webhook_rows import (
    DELIVERY_COLUMNS,
    ENDPOINT_COLUMNS,
    attempt_json,
    delivery_of,
    endpoint_of,
    secrets_text,
)
from application.webhook_ports import Claim
from domain.errors import DeliveryNotFound, WebhookNotFound
from domain.events import Event
from domain.history import SchemaSnapshot
from domain.webhooks import Attempt, Delivery, DeliveryKey, DeliveryPage, DeliveryState, Endpoint


def _endpoint_row(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "breaking_only": endpoint.breaking_only,
        "source_ids": list(endpoint.source_ids),
        "tags": list(endpoint.tags),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "secrets": secrets_text(endpoint.secrets),
        "created_at": endpoint.created_at,
        "created_by": endpoint.created_by,
        "updated_at": endpoint.updated_at,
    }


_CASTS = {"events": "text[]", "source_ids": "uuid[]", "tags": "text[]", "secrets": "json"}
_ENDPOINT_VALUES = ", ".join(
    f"%({c.strip()})s" + (f"::{_CASTS[c.strip()]}" if c.strip() in _CASTS else "")
    for c in ENDPOINT_COLUMNS.split(",")
)
_ENDPOINT_SETS = ", ".join(
    f"{c.strip()} = %({c.strip()})s" + (f"::{_CASTS[c.strip()]}" if c.strip() in _CASTS else "")
    for c in ENDPOINT_COLUMNS.split(",")
    if c.strip() != "id"
)


class PostgresWebhookRepository:
    """Endpoints in `webhook_endpoints`, each change with its event in one transaction."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def add(self, endpoint: Endpoint, event: Event) -> None:
        await self._db.shielded(self._add(endpoint, event))

    async def _add(self, endpoint: Endpoint, event: Event) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                f"INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ({_ENDPOINT_VALUES})",
                _endpoint_row(endpoint),
            )
            await _record(conn, event)

    async def get(self, endpoint_id: UUID) -> Endpoint:
        rows = await self._db.read(
            f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = %s", [endpoint_id]
        )
        if not rows:
            raise WebhookNotFound(endpoint_id)
        return endpoint_of(rows[0])

    async def list(self) -> Sequence[Endpoint]:
        rows = await self._db.read(
            f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
        )
        return [endpoint_of(row) for row in rows]

    async def update(self, endpoint: Endpoint, event: Event | None) -> None:
        await self._db.shielded(self._update(endpoint, event))

    async def _update(self, endpoint: Endpoint, event: Event | None) -> None:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE webhook_endpoints SET {_ENDPOINT_SETS} WHERE id = %(id)s",
                _endpoint_row(endpoint),
            )
            if not cursor.rowcount:
                raise WebhookNotFound(endpoint.id)
            await _record(conn, event)

    async def remove(self, endpoint_id: UUID, event: Event) -> None:
        await self._db.shielded(self._remove(endpoint_id, event))

    async def _remove(self, endpoint_id: UUID, event: Event) -> None:
        async with self._db.transaction() as conn:
            # The deliveries go with it (ON DELETE CASCADE).
            cursor = await conn.execute(
                "DELETE FROM webhook_endpoints WHERE id = %s", [endpoint_id]
            )
            if not cursor.rowcount:
                raise WebhookNotFound(endpoint_id)
            await _record(conn, event)


_CLAIM = f"""
UPDATE webhook_deliveries SET lease_owner = %(owner)s, lease_until = %(until)s
 WHERE id IN (
    SELECT id FROM webhook_deliveries WHERE id IN (
        SELECT id FROM (
            SELECT d.id, d.next_attempt_at,
                   row_number() OVER (PARTITION BY d.endpoint_id
                                      ORDER BY d.next_attempt_at, d.id) AS n
              FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
             WHERE d.state = 'pending' AND d.next_attempt_at <= %(now)s
               AND (d.lease_until IS NULL OR d.lease_until <= %(now)s) AND w.enabled
               AND NOT (d.endpoint_id = ANY (%(skip)s::uuid[]))
        ) ranked WHERE n <= %(per_endpoint)s ORDER BY next_attempt_at, id LIMIT %(limit)s
    ) FOR UPDATE SKIP LOCKED
 ) AND (lease_until IS NULL OR lease_until <= %(now)s)
RETURNING {DELIVERY_COLUMNS}, body
"""


_ANY_DUE = (
    "SELECT 1 AS due FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= %s"
    " AND (lease_until IS NULL OR lease_until <= %s) LIMIT 1"
)


_FINISH = (
    "UPDATE webhook_deliveries SET"
    " attempts = (attempts::jsonb || jsonb_build_array(%(attempt)s::jsonb))::json,"
    " round_attempts = round_attempts + 1, state = %(state)s,"
    " next_attempt_at = %(next)s, body = coalesce(body, %(body)s),"
    " lease_owner = NULL, lease_until = NULL"
    " WHERE id = %(id)s AND lease_owner = %(owner)s RETURNING endpoint_id"
)
_DISABLE = (
    "UPDATE webhook_endpoints SET enabled = false, disabled_reason = %(disable)s"
    " WHERE id = (SELECT endpoint_id FROM webhook_deliveries WHERE id = %(id)s)"
)


class PostgresDeliveryRepository:
    """The outbox in `webhook_deliveries`."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        # Attempts that end while one transaction is out are recorded together in the next.
        self._finished: GroupCommit[bool] = GroupCommit(self._finish_all)

    async def add(self, delivery: Delivery, body: bytes) -> None:
        await self._db.write(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, type, state,"
            " next_attempt_at, created_at, body) VALUES (%(id)s, %(endpoint_id)s, %(event_id)s,"
            " %(type)s, %(state)s, %(next)s, %(created_at)s, %(body)s)",
            {
                "id": delivery.id,
                "endpoint_id": delivery.endpoint_id,
                "event_id": delivery.event_id,
                "type": delivery.type,
                "state": delivery.state.value,
                "next": delivery.next_attempt_at,
                "created_at": delivery.created_at,
                "body": body,
            },
        )

    async def list(
        self,
        endpoint_id: UUID,
        state: DeliveryState | None,
        limit: int,
        before: DeliveryKey | None = None,
    ) -> DeliveryPage:
        sql = f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = %s"
        parameters: list[Any] = [endpoint_id]
        if state is not None:
            sql += " AND state = %s"
            parameters.append(state.value)
        if before is not None:
            sql += " AND (created_at, id) < (%s::timestamptz, %s::uuid)"
            parameters += [before.created_at, before.id]
        sql += " ORDER BY created_at DESC, id DESC LIMIT %s"
        rows = await self._db.read(sql, [*parameters, limit + 1])
        found = tuple(delivery_of(row) for row in rows[:limit])
        more = len(rows) > limit
        return DeliveryPage(
            found, DeliveryKey(found[-1].created_at, found[-1].id) if more else None
        )

    async def redeliver(self, endpoint_id: UUID, delivery_id: UUID, now: datetime) -> None:
        changed = await self._db.write(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = %(now)s,"
            " round_attempts = 0, lease_owner = NULL, lease_until = NULL"
            " WHERE id = %(id)s AND endpoint_id = %(endpoint_id)s",
            {"now": now, "id": delivery_id, "endpoint_id": endpoint_id},
        )
        if not changed:
            raise DeliveryNotFound(delivery_id)

    async def claim(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        per_endpoint: int,
        skip: frozenset[UUID] = frozenset(),
    ) -> Sequence[Claim]:
        parameters = {
            "owner": owner,
            "until": lease_until,
            "now": now,
            "skip": list(skip),
            "per_endpoint": per_endpoint,
            "limit": limit,
        }
        # A read first: an idle sender opens no transaction and locks nothing.
        if not await self._db.read(_ANY_DUE, [now, now]):
            return []
        async with self._db.transaction() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(_CLAIM, parameters)
            rows = await cursor.fetchall()
            if not rows:
                return []
            await cursor.execute(
                f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ANY(%s)",
                [list({row["endpoint_id"] for row in rows})],
            )
            endpoints = {row["id"]: endpoint_of(row) for row in await cursor.fetchall()}
            await cursor.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ANY(%s)",
                [[row["event_id"] for row in rows if row["event_id"] is not None]],
            )
            events = {row["id"]: from_row(row, Event) for row in await cursor.fetchall()}
        rows.sort(key=lambda row: (row["next_attempt_at"], str(row["id"])))
        return [
            Claim(
                delivery_of(row),
                endpoints[row["endpoint_id"]],
                events.get(row["event_id"]),
                None if row["body"] is None else bytes(row["body"]),
            )
            for row in rows
        ]

    async def finish_attempt(
        self,
        owner: str,
        delivery_id: UUID,
        attempt: Attempt,
        state: DeliveryState,
        next_attempt_at: datetime | None,
        body: bytes,
        disable: str | None = None,
    ) -> bool:
        parameters = {
            "attempt": attempt_json(attempt),
            "state": state.value,
            "next": next_attempt_at,
            "id": delivery_id,
            "owner": owner,
            "body": body,
            "disable": disable,
        }
        return await self._finished(parameters)

    async def _finish_all(self, batch: Sequence[dict[str, Any]]) -> Sequence[bool]:
        """Record the attempts in one transaction, its statements pipelined (one commit)."""
        return await self._db.shielded(self._finishing(batch))

    async def _finishing(self, batch: Sequence[dict[str, Any]]) -> Sequence[bool]:
        async with self._db.transaction() as conn:
            cursor = conn.cursor()
            await cursor.executemany(_FINISH, batch, returning=True)
            done = []
            while True:
                done.append(await cursor.fetchone() is not None)
                if not cursor.nextset():
                    break
            for parameters, recorded in zip(batch, done, strict=True):
                if recorded and parameters["disable"] is not None:
                    await conn.execute(_DISABLE, parameters)
            return done

    async def pending(self) -> int:
        rows = await self._db.read(
            "SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'pending'"
        )
        return int(rows[0]["n"])

    async def snapshot_at(self, source_id: UUID, observed_at: datetime) -> SchemaSnapshot | None:
        rows = await self._db.read(
            f"SELECT {SNAPSHOT_COLUMNS} FROM schema_snapshots"
            " WHERE source_id = %s AND observed_at = %s ORDER BY sequence DESC LIMIT 1",
            [source_id, observed_at],
        )
        return from_row(rows[0], SchemaSnapshot) if rows else None

    async def snapshot_before(self, source_id: UUID, sequence: int) -> SchemaSnapshot | None:
        rows = await self._db.read(
            f"SELECT {SNAPSHOT_COLUMNS} FROM schema_snapshots"
            " WHERE source_id = %s AND sequence < %s ORDER BY sequence DESC LIMIT 1",
            [source_id, sequence],
        )
        return from_row(rows[0], SchemaSnapshot) if rows else None
