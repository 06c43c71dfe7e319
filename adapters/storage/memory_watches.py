"""Watches in memory: the fake the use-case tests run on, held to the contract of the real ones."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import attrs

from adapters.storage.memory import MemoryEventRepository, MemorySourceRepository
from domain.errors import SourceNotFound, WatchNotFound
from domain.events import Event
from domain.sources import Source
from domain.watches import (
    CheckResult,
    Claim,
    Watch,
    WatchKey,
    WatchPage,
    WatchStatus,
    after_check,
    watch_order,
)


@attrs.frozen
class _Lease:
    token: UUID
    until: datetime


class MemoryWatchRepository:
    """One watch per source in a dict, with its lease; guarded by a lock. A watch goes with its
    source, and a change of the source's connection makes it due at once, as in SQL."""

    def __init__(self, sources: MemorySourceRepository, events: MemoryEventRepository) -> None:
        self._sources = sources
        self._events = events
        self._watches: dict[UUID, Watch] = {}
        self._leases: dict[UUID, _Lease] = {}
        self._lock = threading.Lock()
        sources.on_remove(self._forget)
        sources.on_connection_change(self._reconnected)

    def _forget(self, source_id: UUID) -> None:
        with self._lock:
            self._watches.pop(source_id, None)
            self._leases.pop(source_id, None)

    def _reconnected(self, source: Source) -> None:
        with self._lock:
            watch = self._watches.get(source.id)
            if watch is not None:
                at = source.updated_at
                self._watches[source.id] = attrs.evolve(watch, anchor_at=at, next_check_at=at)

    def _named(self, watch: Watch) -> Watch:
        try:
            name = self._sources.find(watch.source_id).name.value
        except SourceNotFound:
            return watch
        return attrs.evolve(watch, source_name=name)

    async def put(self, watch: Watch) -> Watch:
        with self._lock:
            self._sources.find(watch.source_id)
            self._watches[watch.source_id] = watch
            self._leases.pop(watch.source_id, None)
        return self._named(watch)

    async def get(self, source_id: UUID) -> Watch:
        with self._lock:
            watch = self._watches.get(source_id)
        if watch is None:
            raise WatchNotFound(source_id)
        return self._named(watch)

    async def remove(self, source_id: UUID) -> None:
        with self._lock:
            if self._watches.pop(source_id, None) is None:
                raise WatchNotFound(source_id)
            self._leases.pop(source_id, None)

    async def list(
        self, status: WatchStatus | None, limit: int | None, after: WatchKey | None = None
    ) -> WatchPage:
        with self._lock:
            watches = sorted(self._watches.values(), key=watch_order)
        if status is not None:
            watches = [w for w in watches if w.status is status]
        if after is not None:
            watches = [
                w for w in watches if watch_order(w) > (after.next_check_at, after.source_id)
            ]
        shown = tuple(self._named(w) for w in watches[:limit])
        more = limit is not None and len(watches) > limit
        last = shown[-1] if more else None
        return WatchPage(shown, WatchKey(*watch_order(last)) if last is not None else None)

    async def claim(self, now: datetime, lease_until: datetime, limit: int) -> Sequence[Claim]:
        claims: list[Claim] = []
        with self._lock:
            for watch in sorted(self._watches.values(), key=watch_order):
                if len(claims) == limit or watch.next_check_at > now:
                    break
                lease = self._leases.get(watch.source_id)
                if lease is not None and lease.until > now:
                    continue
                token = uuid.uuid4()
                self._leases[watch.source_id] = _Lease(token, lease_until)
                claims.append(Claim(watch, watch.next_check_at, token))
        return [attrs.evolve(c, watch=self._named(c.watch)) for c in claims]

    async def complete(
        self, claim: Claim, result: CheckResult, next_check_at: datetime, events: Sequence[Event]
    ) -> bool:
        source_id = claim.watch.source_id
        with self._lock:
            lease = self._leases.get(source_id)
            watch = self._watches.get(source_id)
            if watch is None or lease is None or lease.token != claim.token:
                return False
            del self._leases[source_id]
            done = after_check(watch, result)
            if watch.next_check_at == claim.due_at and watch.anchor_at == claim.watch.anchor_at:
                done = attrs.evolve(done, next_check_at=next_check_at)
            self._watches[source_id] = done
            for event in events:
                self._events.record(event)
        return True

    async def overdue(self, due_before: datetime, now: datetime) -> int:
        with self._lock:
            return sum(
                1
                for w in self._watches.values()
                if w.next_check_at < due_before
                and (w.source_id not in self._leases or self._leases[w.source_id].until <= now)
            )
