"""Watches: a source's schema checked on a schedule, and the rule that says when each check is due.

A watch's checks fall on a fixed grid, so they never drift with how long checks take or how late
they start: the first is due at once (at the watch's `anchor_at`: when it was made or replaced,
or when its source's connection changed), the next at `anchor_at + offset + interval`, then one
interval after each due time. The offset, up to 10 % of the interval, is fixed per watch (it
comes from the source's id), so watches made together spread out rather than fall due together.
"""

from __future__ import annotations

import enum
import math
from datetime import datetime, timedelta
from uuid import UUID

import attrs

INTERVAL_MIN = 60
INTERVAL_MAX = 86400
OFFSET_SHARE = 0.1
"""The largest per-watch offset, as a share of the interval."""

WATCH_ACTOR = "tdb-watch"
"""Who the scheduler's checks are recorded as, in the history's events and the audit trail."""


class WatchStatus(enum.StrEnum):
    """`pending` until the first check; then `ok` if the last check succeeded, else `failing`."""

    PENDING = "pending"
    OK = "ok"
    FAILING = "failing"


class CheckOutcome(enum.StrEnum):
    """What one check found: the columns as before, changed (breaking or not), or no answer."""

    UNCHANGED = "unchanged"
    CHANGED = "changed"
    BREAKING = "breaking"
    FAILED = "failed"


def offset_seconds(source_id: UUID, interval_seconds: int) -> float:
    """The watch's fixed offset: a share below 10 % of the interval, taken from the source's id
    (random ids spread evenly), in whole milliseconds."""
    share = (source_id.int % 1_000_003) / 1_000_003 * OFFSET_SHARE
    return math.floor(share * interval_seconds * 1000) / 1000


def following_due(
    anchor_at: datetime, interval_seconds: int, offset: float, due_at: datetime, now: datetime
) -> datetime:
    """The due time after the check due at `due_at`: the first grid time after it.

    A watch more than one interval behind (its processes were all down) is not made to catch up
    on every missed time: its next check is the grid time just passed, due at once.
    """
    interval = timedelta(seconds=interval_seconds)
    first = anchor_at + timedelta(seconds=offset) + interval
    following = first if due_at < first else first + interval * ((due_at - first) // interval + 1)
    if following < now - interval:
        following = first + interval * ((now - first) // interval)
    return following


@attrs.frozen
class Watch:
    """One source's watch: how often its schema is checked, and how the last check went."""

    source_id: UUID
    source_name: str
    interval_seconds: int
    anchor_at: datetime
    next_check_at: datetime
    created_at: datetime
    created_by: str
    last_checked_at: datetime | None = None
    last_outcome: CheckOutcome | None = attrs.field(
        default=None, converter=attrs.converters.optional(CheckOutcome)
    )
    last_reason: str | None = None
    consecutive_failures: int = 0

    @property
    def status(self) -> WatchStatus:
        if self.last_outcome is None:
            return WatchStatus.PENDING
        return WatchStatus.FAILING if self.last_outcome is CheckOutcome.FAILED else WatchStatus.OK

    @property
    def offset(self) -> float:
        return offset_seconds(self.source_id, self.interval_seconds)


def new_watch(source_id: UUID, interval_seconds: int, at: datetime, by: str) -> Watch:
    """A watch made (or replaced) now: due at once, no check yet. The store fills in the name."""
    return Watch(
        source_id=source_id,
        source_name="",
        interval_seconds=interval_seconds,
        anchor_at=at,
        next_check_at=at,
        created_at=at,
        created_by=by,
    )


@attrs.frozen
class WatchKey:
    """A position in the soonest-first order of watches: strictly after (next_check_at, id)."""

    next_check_at: datetime
    source_id: UUID


def watch_order(watch: Watch) -> tuple[datetime, UUID]:
    """The listing's order: soonest next check first, ties broken by the source's id."""
    return (watch.next_check_at, watch.source_id)


@attrs.frozen
class WatchPage:
    """One page of watches and the key of the page after it, if there is one."""

    watches: tuple[Watch, ...]
    next_key: WatchKey | None = None


@attrs.frozen
class Claim:
    """A due check this process holds a lease on: the watch as claimed, the due time it runs
    for, and the token that proves the lease is still its own when the check is recorded."""

    watch: Watch
    due_at: datetime
    token: UUID


@attrs.frozen
class CheckResult:
    """How one check went, as the watch records it."""

    checked_at: datetime
    outcome: CheckOutcome = attrs.field(converter=CheckOutcome)
    reason: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome is CheckOutcome.FAILED


def after_check(watch: Watch, result: CheckResult) -> Watch:
    """The watch once this check is recorded (its due time is the store's business)."""
    return attrs.evolve(
        watch,
        last_checked_at=result.checked_at,
        last_outcome=result.outcome,
        last_reason=result.reason,
        consecutive_failures=watch.consecutive_failures + 1 if result.failed else 0,
    )
