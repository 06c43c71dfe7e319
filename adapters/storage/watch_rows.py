"""What the SQL stores of watches share: the columns read, a row as a `Watch`, the filters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from adapters.serialization import parse_timestamp
from domain.watches import Watch, WatchKey, WatchPage, WatchStatus

WATCH_SELECT = (
    "SELECT w.source_id, s.name, w.interval_seconds, w.anchor_at, w.next_check_at, w.created_at,"
    " w.created_by, w.last_checked_at, w.last_outcome, w.last_reason, w.consecutive_failures"
    " FROM source_watches w JOIN sources s ON s.id = w.source_id"
)
"""The watches with their sources' names (a watch's name is always its source's current one)."""

STATUS_CONDITIONS = {
    WatchStatus.PENDING: "w.last_outcome IS NULL",
    WatchStatus.OK: "w.last_outcome IS NOT NULL AND w.last_outcome <> 'failed'",
    WatchStatus.FAILING: "w.last_outcome = 'failed'",
}


def watch_listing(
    status: WatchStatus | None,
    limit: int | None,
    after: tuple[Any, Any] | None,
    param: str,
) -> tuple[str, list[Any]]:
    """The query of a page of watches and its parameters (`after`: the key as stored)."""
    conditions: list[str] = []
    parameters: list[Any] = []
    if status is not None:
        conditions.append(STATUS_CONDITIONS[status])
    if after is not None:
        conditions.append(f"(w.next_check_at, w.source_id) > ({param}, {param})")
        parameters += list(after)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"{WATCH_SELECT}{where} ORDER BY w.next_check_at, w.source_id"
    if limit is not None:
        sql += f" LIMIT {param}"
        parameters.append(limit + 1)
    return sql, parameters


def watch_of(row: Sequence[Any]) -> Watch:
    """The watch of a row of `WATCH_SELECT`."""
    source_id, name, interval, anchor, due, created, by, checked, outcome, reason, failures = row
    return Watch(
        source_id=source_id if isinstance(source_id, UUID) else UUID(source_id),
        source_name=name,
        interval_seconds=int(interval),
        anchor_at=parse_timestamp(anchor),
        next_check_at=parse_timestamp(due),
        created_at=parse_timestamp(created),
        created_by=by,
        last_checked_at=None if checked is None else parse_timestamp(checked),
        last_outcome=outcome,
        last_reason=reason,
        consecutive_failures=int(failures),
    )


def watch_page(rows: Sequence[Sequence[Any]], limit: int | None) -> WatchPage:
    """A page of at most `limit` watches from up to `limit + 1` rows (one more: there is a next)."""
    watches = tuple(watch_of(row) for row in rows[:limit])
    if limit is None or len(rows) <= limit:
        return WatchPage(watches)
    last = watches[-1]
    return WatchPage(watches, WatchKey(last.next_check_at, last.source_id))
