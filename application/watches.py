"""Use cases on watches: put, get, delete and list a source's watch; claim the due checks and run
each one as an inspection like any other."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta
from typing import TypeAlias, TypeVar
from uuid import UUID

import attrs

from application.history import InspectSchema, InspectSchemaQuery
from application.ports import Clock, IdGenerator, SourceRepository
from application.sources import Guarded, PageQuery, StoreListing, guarded
from application.watch_ports import WatchRepository
from domain.errors import (
    BackendUnavailable,
    InvalidInput,
    SecretUnreadable,
    SourceNotFound,
    UnknownSourceType,
    WatchNotFound,
)
from domain.events import Action, Event
from domain.keys import Principal, Scope
from domain.watches import (
    INTERVAL_MAX,
    INTERVAL_MIN,
    WATCH_ACTOR,
    CheckOutcome,
    CheckResult,
    Claim,
    Watch,
    WatchKey,
    WatchPage,
    WatchStatus,
    following_due,
    new_watch,
)

WATCHER = Principal(identity=WATCH_ACTOR, scopes=frozenset({Scope.READ}))
"""The scheduler, as the actor of its checks: it reads schemas and nothing else."""


@attrs.frozen
class PutWatchCommand:
    """Create or replace one source's watch."""

    actor: Principal
    source_id: UUID
    interval_seconds: int


@guarded(Scope.WRITE)
@attrs.frozen
class PutWatch(Guarded):
    """Create or replace the source's watch: due at once, then every `interval_seconds`.

    `interval_min` is 60 (the API's bound); a lower one is for tests only, so that a schedule
    can be seen to hold over several cycles in seconds.
    """

    _sources: SourceRepository
    _watches: WatchRepository
    _clock: Clock
    _interval_min: int = INTERVAL_MIN

    async def __call__(self, command: PutWatchCommand) -> Watch:
        interval = command.interval_seconds
        if isinstance(interval, bool) or not isinstance(interval, int):
            raise InvalidInput.single("interval_seconds", "must be an integer")
        if not self._interval_min <= interval <= INTERVAL_MAX:
            raise InvalidInput.single(
                "interval_seconds", f"must be between {self._interval_min} and {INTERVAL_MAX}"
            )
        await self._sources.get(command.source_id)
        watch = new_watch(command.source_id, interval, self._clock.now(), command.actor.identity)
        return await self._watches.put(watch)


@attrs.frozen
class WatchQuery:
    """Read or delete one source's watch."""

    actor: Principal
    source_id: UUID


T = TypeVar("T")


@attrs.frozen
class WatchUseCase(Guarded):
    """A use case on one source's watch."""

    _sources: SourceRepository
    _watches: WatchRepository

    async def _on_watch(self, call: Awaitable[T], source_id: UUID) -> T:
        """What `call` gives; if there is no watch, why: no such source (`SourceNotFound`), or
        none on it (`WatchNotFound`)."""
        try:
            return await call
        except WatchNotFound:
            await self._sources.get(source_id)
            raise


@guarded(Scope.READ)
@attrs.frozen
class GetWatch(WatchUseCase):
    """One source's watch; `SourceNotFound` for an unknown source, `WatchNotFound` for none."""

    async def __call__(self, query: WatchQuery) -> Watch:
        return await self._on_watch(self._watches.get(query.source_id), query.source_id)


@guarded(Scope.WRITE)
@attrs.frozen
class DeleteWatch(WatchUseCase):
    """Stop watching a source (its history and events stay)."""

    async def __call__(self, command: WatchQuery) -> None:
        await self._on_watch(self._watches.remove(command.source_id), command.source_id)


ListWatchesQuery: TypeAlias = PageQuery[WatchStatus, WatchKey]
"""Watches soonest next check first, of one status if given (`filter`), one page at a time."""


@guarded(Scope.READ)
@attrs.frozen
class ListWatches(StoreListing[WatchStatus, WatchKey, WatchPage]):
    """Every watch (of one status, if the query's filter names one), soonest next check first:
    the store's `WatchRepository.list`."""


@attrs.frozen
class ClaimDueChecks:
    """Lease up to `limit` due checks for `lease_seconds`: while the lease holds, no other
    process sharing the store runs them; if this one dies, another runs them after it."""

    _watches: WatchRepository
    _clock: Clock
    _lease_seconds: float

    async def __call__(self, limit: int) -> Sequence[Claim]:
        now = self._clock.now()
        lease_until = now + timedelta(seconds=self._lease_seconds)
        return await self._watches.claim(now, lease_until, limit)


@attrs.frozen
class CountOverdueChecks:
    """How many checks are more than `late_seconds` past due and not started (a gauge)."""

    _watches: WatchRepository
    _clock: Clock
    _late_seconds: float = 60

    async def __call__(self) -> int:
        now = self._clock.now()
        return await self._watches.overdue(now - timedelta(seconds=self._late_seconds), now)


@attrs.frozen
class CheckReport:
    """What one check did: its result, and whether it was recorded (the lease was still held)."""

    result: CheckResult
    recorded: bool


@attrs.frozen
class RunCheck:
    """Run one claimed check as the inspection any client could ask for (the same bounds, policy,
    history and `source.schema_changed` event), made by `tdb-watch`, and record how it went.

    After `failures_to_report` failed checks in a row, `source.check_failed` is recorded once for
    the streak; the first success after it records `source.check_recovered`.
    """

    _inspect: InspectSchema
    _watches: WatchRepository
    _clock: Clock
    _ids: IdGenerator
    _failures_to_report: int = 3

    async def __call__(self, claim: Claim) -> CheckReport:
        try:
            schema = await self._inspect(InspectSchemaQuery(WATCHER, claim.watch.source_id))
        except SourceNotFound:
            # Its watch went with it: there is nothing left to record.
            return CheckReport(CheckResult(self._clock.now(), CheckOutcome.FAILED, "gone"), False)
        except BackendUnavailable as exc:
            result = CheckResult(self._clock.now(), CheckOutcome.FAILED, exc.reason)
        except SecretUnreadable:
            result = CheckResult(self._clock.now(), CheckOutcome.FAILED, "secret_unreadable")
        except UnknownSourceType:
            result = CheckResult(self._clock.now(), CheckOutcome.FAILED, "unknown_source_type")
        else:
            recorded = schema.recorded
            if recorded is None or recorded.snapshot.sequence == 1:
                outcome = CheckOutcome.UNCHANGED  # the first snapshot is the baseline
            else:
                outcome = CheckOutcome.BREAKING if recorded.breaking else CheckOutcome.CHANGED
            result = CheckResult(schema.inspected_at, outcome)
        watch = claim.watch
        now = self._clock.now()
        following = following_due(
            watch.anchor_at, watch.interval_seconds, watch.offset, claim.due_at, now
        )
        events = self._events(watch, result, now)
        return CheckReport(result, await self._watches.complete(claim, result, following, events))

    def _events(self, watch: Watch, result: CheckResult, at: datetime) -> list[Event]:
        """The streak's event this check records, if it records one."""
        failures = watch.consecutive_failures
        if result.failed and failures + 1 == self._failures_to_report:
            action, reason = Action.SOURCE_CHECK_FAILED, result.reason
        elif not result.failed and failures >= self._failures_to_report:
            action, reason = Action.SOURCE_CHECK_RECOVERED, None
        else:
            return []
        event = Event(
            id=self._ids.new(),
            at=at,
            actor=WATCH_ACTOR,
            action=action,
            source_id=watch.source_id,
            source_name=watch.source_name,
            reason=reason,
        )
        return [event]
