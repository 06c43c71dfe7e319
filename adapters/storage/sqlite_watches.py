"""Watches in the SQLite store's `source_watches` table.

The store has one writer at a time (`BEGIN IMMEDIATE`, across processes too), so a claim reads
the due checks and leases them in one write transaction that no other process can interleave
with. Reads run on the caller's loop, writes on the store's writer threads, as for sources.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlite_utils

from adapters.serialization import timestamp
from adapters.storage.sqlite import SqliteDatabase, _record
from adapters.storage.watch_rows import WATCH_SELECT, watch_listing, watch_of, watch_page
from domain.errors import SourceNotFound, WatchNotFound
from domain.events import Event
from domain.watches import CheckResult, Claim, Watch, WatchKey, WatchPage, WatchStatus

_LEASE_FREE = "(w.lease_until IS NULL OR w.lease_until <= ?)"


class SqliteWatchRepository:
    """One watch per source, its lease in its row."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def put(self, watch: Watch) -> Watch:
        await self._db.written(self._put, watch)
        return await self.get(watch.source_id)

    def _put(self, watch: Watch) -> None:
        source_id = str(watch.source_id)
        with self._db.writing() as db:
            exists = db.execute("SELECT EXISTS (SELECT 1 FROM sources WHERE id = ?)", [source_id])
            if not exists.fetchone()[0]:
                raise SourceNotFound(watch.source_id)
            db.execute(
                "INSERT OR REPLACE INTO source_watches (source_id, interval_seconds, anchor_at,"
                " next_check_at, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    source_id,
                    watch.interval_seconds,
                    timestamp(watch.anchor_at),
                    timestamp(watch.next_check_at),
                    timestamp(watch.created_at),
                    watch.created_by,
                ],
            )

    async def get(self, source_id: UUID) -> Watch:
        row = self._db.read_one(WATCH_SELECT + " WHERE w.source_id = ?", [str(source_id)])
        if row is None:
            raise WatchNotFound(source_id)
        return watch_of(row)

    async def remove(self, source_id: UUID) -> None:
        await self._db.written(self._remove, source_id)

    def _remove(self, source_id: UUID) -> None:
        with self._db.writing() as db:
            gone = db.execute("DELETE FROM source_watches WHERE source_id = ?", [str(source_id)])
            if not gone.rowcount:
                raise WatchNotFound(source_id)

    async def list(
        self, status: WatchStatus | None, limit: int | None, after: WatchKey | None = None
    ) -> WatchPage:
        key = None if after is None else (timestamp(after.next_check_at), str(after.source_id))
        sql, parameters = watch_listing(status, limit, key, "?")
        return watch_page(self._db.read_rows(sql, parameters), limit)

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[Claim]:
        # A read first: most polls find nothing due, and a read takes no write lock.
        if not self._db.read_one(
            f"SELECT 1 FROM source_watches w WHERE w.next_check_at <= ? AND {_LEASE_FREE} LIMIT 1",
            [timestamp(now), timestamp(now)],
        ):
            return []
        return await self._db.written(self._claim, now, lease_until, limit)

    def _claim(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[Claim]:
        at = timestamp(now)
        with self._db.writing() as db:
            rows = db.execute(
                f"{WATCH_SELECT} WHERE w.next_check_at <= ? AND {_LEASE_FREE}"
                " ORDER BY w.next_check_at, w.source_id LIMIT ?",
                [at, at, limit],
            ).fetchall()
            claims = [
                Claim(watch, watch.next_check_at, uuid.uuid4()) for watch in map(watch_of, rows)
            ]
            db.conn.executemany(
                "UPDATE source_watches SET lease_token = ?, lease_until = ? WHERE source_id = ?",
                [(str(c.token), timestamp(lease_until), str(c.watch.source_id)) for c in claims],
            )
        return claims

    async def complete(
        self, claim: Claim, result: CheckResult, next_check_at: datetime, events: Sequence[Event]
    ) -> bool:
        return await self._db.written(self._complete, claim, result, next_check_at, events)

    def _complete(
        self, claim: Claim, result: CheckResult, next_check_at: datetime, events: Sequence[Event]
    ) -> bool:
        with self._db.writing() as db:
            done = db.execute(_COMPLETE, _completion(claim, result, next_check_at)).rowcount
            if done:
                _record_all(db, events)
            return bool(done)

    async def overdue(self, due_before: datetime, now: datetime) -> int:
        row = self._db.read_one(
            f"SELECT count(*) FROM source_watches w WHERE w.next_check_at < ? AND {_LEASE_FREE}",
            [timestamp(due_before), timestamp(now)],
        )
        return int(row[0]) if row is not None else 0


_COMPLETE = (
    "UPDATE source_watches SET last_checked_at = :checked_at, last_outcome = :outcome,"
    " last_reason = :reason,"
    " consecutive_failures = CASE WHEN :failed THEN consecutive_failures + 1 ELSE 0 END,"
    " next_check_at = CASE WHEN next_check_at = :due_at AND anchor_at = :anchor_at"
    " THEN :next_check_at ELSE next_check_at END,"
    " lease_token = NULL, lease_until = NULL"
    " WHERE source_id = :source_id AND lease_token = :token"
)


def _completion(claim: Claim, result: CheckResult, next_check_at: datetime) -> dict[str, Any]:
    return {
        "checked_at": timestamp(result.checked_at),
        "outcome": result.outcome.value,
        "reason": result.reason,
        "failed": result.failed,
        "due_at": timestamp(claim.due_at),
        "anchor_at": timestamp(claim.watch.anchor_at),
        "next_check_at": timestamp(next_check_at),
        "source_id": str(claim.watch.source_id),
        "token": str(claim.token),
    }


def _record_all(db: sqlite_utils.Database, events: Sequence[Event]) -> None:
    for event in events:
        _record(db, event)
