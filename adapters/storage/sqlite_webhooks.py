"""Webhook endpoints and the outbox of deliveries in the SQLite store.

The outbox is filled by the `webhook_outbox` trigger (see `webhook_schema`). A claim is one
write transaction (`BEGIN IMMEDIATE`: one writer at a time, across processes too), so two
senders never lease one delivery at once; a lapsed lease is taken by whoever claims next.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlite_utils

from adapters.serialization import from_row, timestamp
from adapters.storage.group_commit import GroupCommit
from adapters.storage.listing import EVENT_COLUMNS, SNAPSHOT_COLUMNS
from adapters.storage.sqlite import SqliteDatabase, _record
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
        "id": str(endpoint.id),
        "url": endpoint.url,
        "events": json.dumps(list(endpoint.events)),
        "breaking_only": int(endpoint.breaking_only),
        "source_ids": json.dumps([str(i) for i in endpoint.source_ids]),
        "tags": json.dumps(list(endpoint.tags)),
        "description": endpoint.description,
        "enabled": int(endpoint.enabled),
        "disabled_reason": endpoint.disabled_reason,
        "secrets": secrets_text(endpoint.secrets),
        "created_at": timestamp(endpoint.created_at),
        "created_by": endpoint.created_by,
        "updated_at": timestamp(endpoint.updated_at),
    }


_ENDPOINT_VALUES = ", ".join(f":{c.strip()}" for c in ENDPOINT_COLUMNS.split(","))


class SqliteWebhookRepository:
    """Endpoints in `webhook_endpoints`, each change with its event in one transaction."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def add(self, endpoint: Endpoint, event: Event) -> None:
        await self._db.written(self._add, endpoint, event)

    def _add(self, endpoint: Endpoint, event: Event) -> None:
        with self._db.writing() as db:
            db.execute(
                f"INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ({_ENDPOINT_VALUES})",
                _endpoint_row(endpoint),
            )
            _record(db, event)

    async def get(self, endpoint_id: UUID) -> Endpoint:
        rows = self._db.read(
            f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?", [str(endpoint_id)]
        )
        if not rows:
            raise WebhookNotFound(endpoint_id)
        return endpoint_of(rows[0])

    async def list(self) -> Sequence[Endpoint]:
        rows = self._db.read(
            f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"
        )
        return [endpoint_of(row) for row in rows]

    async def update(self, endpoint: Endpoint, event: Event | None) -> None:
        await self._db.written(self._update, endpoint, event)

    def _update(self, endpoint: Endpoint, event: Event | None) -> None:
        row = _endpoint_row(endpoint)
        sets = ", ".join(f"{name} = :{name}" for name in row if name != "id")
        with self._db.writing() as db:
            if not db.execute(f"UPDATE webhook_endpoints SET {sets} WHERE id = :id", row).rowcount:
                raise WebhookNotFound(endpoint.id)
            _record(db, event)

    async def remove(self, endpoint_id: UUID, event: Event) -> None:
        await self._db.written(self._remove, endpoint_id, event)

    def _remove(self, endpoint_id: UUID, event: Event) -> None:
        with self._db.writing() as db:
            gone = db.execute("DELETE FROM webhook_endpoints WHERE id = ?", [str(endpoint_id)])
            if not gone.rowcount:
                raise WebhookNotFound(endpoint_id)
            db.execute("DELETE FROM webhook_deliveries WHERE endpoint_id = ?", [str(endpoint_id)])
            _record(db, event)


_DUE = """
SELECT id FROM (
    SELECT d.id, d.next_attempt_at,
           row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.id) AS n
      FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
     WHERE d.state = 'pending' AND d.next_attempt_at <= :now
       AND (d.lease_until IS NULL OR d.lease_until <= :now) AND w.enabled
       AND d.endpoint_id NOT IN (SELECT value FROM json_each(:skip))
) WHERE n <= :per_endpoint ORDER BY next_attempt_at, id LIMIT :limit
"""


_ANY_DUE = (
    "SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?"
    " AND (lease_until IS NULL OR lease_until <= ?) LIMIT 1"
)


class SqliteDeliveryRepository:
    """The outbox in `webhook_deliveries`."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        # Attempts that end while one transaction is out are recorded together in the next.
        self._finished: GroupCommit[bool] = GroupCommit(self._finish_all)

    async def add(self, delivery: Delivery, body: bytes) -> None:
        await self._db.written(self._add, delivery, body)

    def _add(self, delivery: Delivery, body: bytes) -> None:
        with self._db.writing() as db:
            db.execute(
                "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, type, state,"
                " next_attempt_at, created_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    str(delivery.id),
                    str(delivery.endpoint_id),
                    None if delivery.event_id is None else str(delivery.event_id),
                    delivery.type,
                    delivery.state.value,
                    None
                    if delivery.next_attempt_at is None
                    else timestamp(delivery.next_attempt_at),
                    timestamp(delivery.created_at),
                    body,
                ],
            )

    async def list(
        self,
        endpoint_id: UUID,
        state: DeliveryState | None,
        limit: int,
        before: DeliveryKey | None = None,
    ) -> DeliveryPage:
        sql = f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = ?"
        parameters: list[Any] = [str(endpoint_id)]
        if state is not None:
            sql += " AND state = ?"
            parameters.append(state.value)
        if before is not None:
            sql += " AND (created_at, id) < (?, ?)"
            parameters += [timestamp(before.created_at), str(before.id)]
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        rows = self._db.read(sql, [*parameters, limit + 1])
        found = tuple(delivery_of(row) for row in rows[:limit])
        more = len(rows) > limit
        return DeliveryPage(
            found, DeliveryKey(found[-1].created_at, found[-1].id) if more else None
        )

    async def redeliver(self, endpoint_id: UUID, delivery_id: UUID, now: datetime) -> None:
        await self._db.written(self._redeliver, endpoint_id, delivery_id, now)

    def _redeliver(self, endpoint_id: UUID, delivery_id: UUID, now: datetime) -> None:
        with self._db.writing() as db:
            changed = db.execute(
                "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?,"
                " round_attempts = 0, lease_owner = NULL, lease_until = NULL"
                " WHERE id = ? AND endpoint_id = ?",
                [timestamp(now), str(delivery_id), str(endpoint_id)],
            ).rowcount
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
        # A read first (WAL: it never waits): an idle sender takes no write lock.
        if self._db.read_one(_ANY_DUE, [timestamp(now), timestamp(now)]) is None:
            return []
        return await self._db.written(
            self._claim, owner, now, lease_until, limit, per_endpoint, skip
        )

    def _claim(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        per_endpoint: int,
        skip: frozenset[UUID],
    ) -> Sequence[Claim]:
        with self._db.writing() as db:
            due = {
                "now": timestamp(now),
                "skip": json.dumps([str(s) for s in skip]),
                "per_endpoint": per_endpoint,
                "limit": limit,
            }
            ids = [row[0] for row in db.execute(_DUE, due).fetchall()]
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
            db.execute(
                "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?"
                f" WHERE id IN ({marks})",
                [owner, timestamp(lease_until), *ids],
            )
            return _claims(db, ids)

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
        return await self._finished(
            (owner, delivery_id, attempt, state, next_attempt_at, body, disable)
        )

    async def _finish_all(self, batch: Sequence[tuple[Any, ...]]) -> Sequence[bool]:
        return await self._db.written(_finish_all, self._db, list(batch))

    async def pending(self) -> int:
        rows = self._db.read("SELECT count(*) AS n FROM webhook_deliveries WHERE state = 'pending'")
        return int(rows[0]["n"])

    async def snapshot_at(self, source_id: UUID, observed_at: datetime) -> SchemaSnapshot | None:
        rows = self._db.read(
            f"SELECT {SNAPSHOT_COLUMNS} FROM schema_snapshots"
            " WHERE source_id = ? AND observed_at = ? ORDER BY sequence DESC LIMIT 1",
            [str(source_id), timestamp(observed_at)],
        )
        return from_row(rows[0], SchemaSnapshot) if rows else None

    async def snapshot_before(self, source_id: UUID, sequence: int) -> SchemaSnapshot | None:
        rows = self._db.read(
            f"SELECT {SNAPSHOT_COLUMNS} FROM schema_snapshots"
            " WHERE source_id = ? AND sequence < ? ORDER BY sequence DESC LIMIT 1",
            [str(source_id), sequence],
        )
        return from_row(rows[0], SchemaSnapshot) if rows else None


def _finish_all(store: SqliteDatabase, batch: list[tuple[Any, ...]]) -> list[bool]:
    """Record attempts in one write transaction; say for each whether it was recorded."""
    with store.writing() as db:
        return [_finish(db, *arguments) for arguments in batch]


def _finish(
    db: sqlite_utils.Database,
    owner: str,
    delivery_id: UUID,
    attempt: Attempt,
    state: DeliveryState,
    next_attempt_at: datetime | None,
    body: bytes,
    disable: str | None,
) -> bool:
    """Record one attempt, inside the caller's write transaction, if `owner` holds the lease."""
    rows = db.execute(
        "UPDATE webhook_deliveries SET attempts = json_insert(attempts, '$[#]', json(?)),"
        " round_attempts = round_attempts + 1, state = ?, next_attempt_at = ?,"
        " body = coalesce(body, ?), lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND lease_owner = ? RETURNING endpoint_id",
        [
            attempt_json(attempt),
            state.value,
            None if next_attempt_at is None else timestamp(next_attempt_at),
            body,
            str(delivery_id),
            owner,
        ],
    ).fetchall()
    if rows and disable is not None:
        db.execute(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ? WHERE id = ?",
            [disable, rows[0][0]],
        )
    return bool(rows)


def _claims(db: sqlite_utils.Database, ids: list[str]) -> list[Claim]:
    """The claimed deliveries with their endpoints, events and bodies, oldest due first."""
    marks = ", ".join("?" for _ in ids)
    cursor = db.execute(
        f"SELECT {DELIVERY_COLUMNS}, body FROM webhook_deliveries WHERE id IN ({marks})"
        " ORDER BY next_attempt_at, id",
        ids,
    )
    names = [c[0] for c in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    endpoint_ids = sorted({row["endpoint_id"] for row in rows})
    cursor = db.execute(
        f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints"
        f" WHERE id IN ({', '.join('?' for _ in endpoint_ids)})",
        endpoint_ids,
    )
    names = [c[0] for c in cursor.description]
    endpoints = {
        row[0]: endpoint_of(dict(zip(names, row, strict=True))) for row in cursor.fetchall()
    }
    event_ids = [row["event_id"] for row in rows if row["event_id"] is not None]
    events: dict[str, Event] = {}
    if event_ids:
        cursor = db.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE id IN ({', '.join('?' for _ in event_ids)})",
            event_ids,
        )
        names = [c[0] for c in cursor.description]
        for row in cursor.fetchall():
            as_dict = dict(zip(names, row, strict=True))
            events[as_dict["id"]] = from_row(as_dict, Event)
    return [
        Claim(
            delivery_of(row),
            endpoints[row["endpoint_id"]],
            events.get(row["event_id"]) if row["event_id"] is not None else None,
            None if row["body"] is None else bytes(row["body"]),
        )
        for row in rows
    ]
