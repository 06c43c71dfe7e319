"""Watches in the PostgreSQL store's `source_watches` table.

A claim is one statement: it picks due rows `FOR UPDATE SKIP LOCKED` (rows another replica is
claiming right now are passed over, not waited for) and writes a lease into them. The lease is
a row's own columns, not a session's advisory lock, so it holds behind a transaction-pooling
proxy and survives the connection; a replica that dies leaves it to expire.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from psycopg import errors as pg_errors

from adapters.serialization import parse_timestamp
from adapters.storage.postgres import PostgresDatabase, _record
from adapters.storage.watch_rows import WATCH_SELECT, watch_listing, watch_of, watch_page
from domain.errors import SourceNotFound, WatchNotFound
from domain.events import Event
from domain.watches import CheckResult, Claim, Watch, WatchKey, WatchPage, WatchStatus

_LEASE_FREE = "(lease_until IS NULL OR lease_until <= %(now)s)"

_PUT = (
    "INSERT INTO source_watches (source_id, interval_seconds, anchor_at, next_check_at,"
    " created_at, created_by) VALUES (%(source_id)s, %(interval)s, %(at)s, %(due)s,"
    " %(created_at)s, %(by)s)"
    " ON CONFLICT (source_id) DO UPDATE SET interval_seconds = EXCLUDED.interval_seconds,"
    " anchor_at = EXCLUDED.anchor_at, next_check_at = EXCLUDED.next_check_at,"
    " created_at = EXCLUDED.created_at, created_by = EXCLUDED.created_by,"
    " last_checked_at = NULL, last_outcome = NULL, last_reason = NULL,"
    " consecutive_failures = 0, lease_token = NULL, lease_until = NULL"
)

_CLAIM = (
    "WITH due AS (SELECT source_id FROM source_watches"
    f" WHERE next_check_at <= %(now)s AND {_LEASE_FREE}"
    " ORDER BY next_check_at, source_id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
    " UPDATE source_watches w SET lease_token = gen_random_uuid(), lease_until = %(until)s"
    " FROM due, sources s WHERE w.source_id = due.source_id AND s.id = w.source_id"
    " RETURNING w.source_id, s.name, w.interval_seconds, w.anchor_at, w.next_check_at,"
    " w.created_at, w.created_by, w.last_checked_at, w.last_outcome, w.last_reason,"
    " w.consecutive_failures, w.lease_token"
)

_COMPLETE = (
    "UPDATE source_watches SET last_checked_at = %(checked_at)s, last_outcome = %(outcome)s,"
    " last_reason = %(reason)s,"
    " consecutive_failures = CASE WHEN %(failed)s THEN consecutive_failures + 1 ELSE 0 END,"
    " next_check_at = CASE WHEN next_check_at = %(due_at)s AND anchor_at = %(anchor_at)s"
    " THEN %(next_check_at)s ELSE next_check_at END,"
    " lease_token = NULL, lease_until = NULL"
    " WHERE source_id = %(source_id)s AND lease_token = %(token)s"
)


class PostgresWatchRepository:
    """One watch per source, its lease in its row, gone with its source (a foreign key)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def put(self, watch: Watch) -> Watch:
        parameters = {
            "source_id": watch.source_id,
            "interval": watch.interval_seconds,
            "at": watch.anchor_at,
            "due": watch.next_check_at,
            "created_at": watch.created_at,
            "by": watch.created_by,
        }
        try:
            await self._db.write(_PUT, parameters)
        except pg_errors.ForeignKeyViolation:
            raise SourceNotFound(watch.source_id) from None
        return await self.get(watch.source_id)

    async def get(self, source_id: UUID) -> Watch:
        rows = await self._db.read_rows(WATCH_SELECT + " WHERE w.source_id = %s", [source_id])
        if not rows:
            raise WatchNotFound(source_id)
        return watch_of(rows[0])

    async def remove(self, source_id: UUID) -> None:
        gone = await self._db.write(
            "DELETE FROM source_watches WHERE source_id = %(id)s", {"id": source_id}
        )
        if not gone:
            raise WatchNotFound(source_id)

    async def list(
        self, status: WatchStatus | None, limit: int | None, after: WatchKey | None = None
    ) -> WatchPage:
        key = None if after is None else (after.next_check_at, after.source_id)
        sql, parameters = watch_listing(status, limit, key, "%s")
        return watch_page(await self._db.read_rows(sql, parameters), limit)

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[Claim]:
        parameters = {"now": now, "until": lease_until, "limit": limit}
        async with self._db.connection() as conn:
            rows = await (await conn.execute(_CLAIM, parameters)).fetchall()
        claims = [Claim(watch_of(row[:-1]), parse_timestamp(row[4]), row[-1]) for row in rows]
        return sorted(claims, key=lambda c: (c.due_at, c.watch.source_id))

    async def complete(
        self, claim: Claim, result: CheckResult, next_check_at: datetime, events: Sequence[Event]
    ) -> bool:
        parameters = {
            "checked_at": result.checked_at,
            "outcome": result.outcome.value,
            "reason": result.reason,
            "failed": result.failed,
            "due_at": claim.due_at,
            "anchor_at": claim.watch.anchor_at,
            "next_check_at": next_check_at,
            "source_id": claim.watch.source_id,
            "token": claim.token,
        }
        async with self._db.transaction() as conn:
            done = (await conn.execute(_COMPLETE, parameters)).rowcount
            if done:
                for event in events:
                    await _record(conn, event)
        return bool(done)

    async def overdue(self, due_before: datetime, now: datetime) -> int:
        rows = await self._db.read_rows(
            "SELECT count(*) FROM source_watches WHERE next_check_at < %s"
            " AND (lease_until IS NULL OR lease_until <= %s)",
            [due_before, now],
        )
        return int(rows[0][0])
