"""In-memory stores: the fakes the use-case tests run on, held to the contract of the real ones."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from datetime import datetime
from uuid import UUID

import attrs

from adapters.storage.listing import event_page, page
from domain.errors import (
    ApiKeyNotFound,
    DuplicateKeyName,
    DuplicateSourceName,
    KeyNotRotatable,
    SourceNotFound,
    VersionMismatch,
)
from domain.events import Event, EventFilter, EventKey, EventPage, event_order
from domain.history import SchemaSnapshot, SnapshotHead
from domain.keys import ApiKey
from domain.sources import PageKey, Source, SourceFilter, SourcePage, SourceSummary, sort_key


class MemoryStore:
    """Nothing to migrate, always ready."""

    async def upgrade(self) -> list[int]:
        return []

    async def ping(self) -> None:
        return None

    def usage(self) -> tuple[int, int]:
        return (0, 0)

    async def release(self) -> None:
        return None


class MemoryEventRepository:
    """The audit trail in a list; the source and key repositories of one store share it."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._outboxes: list[Callable[[Event, tuple[str, ...] | None], None]] = []
        self.source_tags: dict[UUID, tuple[str, ...]] = {}
        """Each source's tags as last stored (kept after a removal, for its event's outbox)."""

    def on_record(self, outbox: Callable[[Event, tuple[str, ...] | None], None]) -> None:
        """Have `outbox(event, tags of its source)` called with every event, as it is recorded
        (what the SQL stores' trigger on their events table does)."""
        self._outboxes.append(outbox)

    async def append(self, event: Event) -> None:
        self.record(event)

    def record(self, event: Event) -> None:
        """Append the event (what the other repositories of the store do with theirs)."""
        with self._lock:
            self._events.append(event)
            tags = None if event.source_id is None else self.source_tags.get(event.source_id)
            for outbox in self._outboxes:
                outbox(event, tags)

    async def list(
        self, event_filter: EventFilter, limit: int | None = None, after: EventKey | None = None
    ) -> EventPage:
        with self._lock:
            matching = sorted((e for e in self._events if event_filter.matches(e)), key=event_order)
        if after is not None:
            matching = [e for e in matching if event_order(e) > (after.at, after.id)]
        return event_page(matching, limit)


class MemorySourceRepository:
    """Sources in a dict, guarded by a lock (held while the change's event is appended)."""

    def __init__(self, events: MemoryEventRepository | None = None) -> None:
        self._by_id: dict[UUID, Source] = {}
        self._lock = threading.Lock()
        self._events = events if events is not None else MemoryEventRepository()
        self._dependents: list[Callable[[UUID], None]] = []
        self._reconnected: list[Callable[[Source], None]] = []

    def on_remove(self, forget: Callable[[UUID], None]) -> None:
        """Have `forget(source_id)` called inside every removal (what a cascade does in SQL)."""
        self._dependents.append(forget)

    def on_connection_change(self, changed: Callable[[Source], None]) -> None:
        """Have `changed(source)` called inside every update that changes the connection."""
        self._reconnected.append(changed)

    async def add(self, source: Source, event: Event | None = None) -> None:
        with self._lock:
            if any(s.name == source.name for s in self._by_id.values()):
                raise DuplicateSourceName(source.name.value)
            self._by_id[source.id] = source
            self._events.source_tags[source.id] = source.tags
            if event is not None:
                self._events.record(event)

    async def update(
        self, source: Source, expected_version: int, event: Event | None = None
    ) -> None:
        with self._lock:
            current = self.find(source.id)
            if current.version != expected_version:
                raise VersionMismatch(source.id, current.version)
            if any(s.name == source.name and s.id != source.id for s in self._by_id.values()):
                raise DuplicateSourceName(source.name.value)
            self._by_id[source.id] = source
            self._events.source_tags[source.id] = source.tags
            if event is not None:
                self._events.record(event)
            if source.connection != current.connection:
                for changed in self._reconnected:
                    changed(source)

    async def get(self, source_id: UUID) -> Source:
        return self.find(source_id)

    def find(self, source_id: UUID) -> Source:
        """The source with this id, or `SourceNotFound` (what `get` answers, without a wait)."""
        try:
            return self._by_id[source_id]
        except KeyError:
            raise SourceNotFound(source_id) from None

    async def list(
        self, source_filter: SourceFilter, limit: int | None = None, after: PageKey | None = None
    ) -> SourcePage:
        with self._lock:
            matching = sorted(
                (s for s in self._by_id.values() if source_filter.matches(s)), key=sort_key
            )
        if after is not None:
            matching = [s for s in matching if sort_key(s) > (after.registered_at, after.id)]
        return page([SourceSummary.of(s) for s in matching], limit)

    async def chunks(
        self, source_filter: SourceFilter, size: int | None = None
    ) -> AsyncGenerator[Sequence[SourceSummary], None]:
        listed = (await self.list(source_filter)).sources
        step = size or 1000
        for start in range(0, len(listed), step):
            yield listed[start : start + step]

    async def revision(self) -> int | None:
        return None  # the store of tests: nothing is gained by caching what it lists

    async def remove(
        self, source_id: UUID, expected_version: int | None = None, event: Event | None = None
    ) -> None:
        with self._lock:
            current = self.find(source_id)
            if expected_version is not None and current.version != expected_version:
                raise VersionMismatch(source_id, current.version)
            del self._by_id[source_id]
            if event is not None:
                self._events.record(attrs.evolve(event, source_name=current.name.value))
            for forget in self._dependents:
                forget(source_id)

    async def count(self) -> int:
        return len(self._by_id)


class MemorySnapshotRepository:
    """Snapshots in lists per source, guarded by a lock; a removed source's history goes too."""

    def __init__(
        self, sources: MemorySourceRepository, events: MemoryEventRepository | None = None
    ) -> None:
        self._sources = sources
        # By default the trail the sources write to: one store, one trail.
        self._events = events if events is not None else sources._events
        self._by_source: dict[UUID, list[SchemaSnapshot]] = {}
        self._lock = threading.Lock()
        self._appended: list[Callable[[SchemaSnapshot], None]] = []
        sources.on_remove(self._forget)

    def on_append(self, index: Callable[[SchemaSnapshot], None]) -> None:
        """Have `index(snapshot)` called inside every append that stores one (as an SQL store
        keeps its column index in the snapshot's transaction)."""
        self._appended.append(index)

    def _forget(self, source_id: UUID) -> None:
        with self._lock:
            self._by_source.pop(source_id, None)

    def _existing(self, source_id: UUID) -> list[SchemaSnapshot]:
        # Called under the lock.
        self._sources.find(source_id)
        return self._by_source.setdefault(source_id, [])

    def _snapshots(self, source_id: UUID) -> list[SchemaSnapshot]:
        with self._lock:
            try:
                return list(self._existing(source_id))
            except SourceNotFound:
                return []

    async def head(self, source_id: UUID) -> SnapshotHead | None:
        snapshots = self._snapshots(source_id)
        if not snapshots:
            return None
        return SnapshotHead(snapshots[-1].sequence, snapshots[-1].fingerprint)

    async def latest(self, source_id: UUID) -> SchemaSnapshot | None:
        snapshots = self._snapshots(source_id)
        return snapshots[-1] if snapshots else None

    async def append(self, snapshot: SchemaSnapshot, event: Event | None = None) -> bool:
        with self._lock:
            snapshots = self._existing(snapshot.source_id)
            if snapshot.sequence != len(snapshots) + 1:
                return False
            snapshots.append(snapshot)
            for index in self._appended:
                index(snapshot)
            if event is not None:
                self._events.record(event)
            return True

    async def newest_first(
        self, source_id: UUID, limit: int, before: int | None = None
    ) -> Sequence[SchemaSnapshot]:
        snapshots = self._snapshots(source_id)
        if before is not None:
            snapshots = [s for s in snapshots if s.sequence < before]
        return snapshots[::-1][:limit]


class MemoryApiKeyRepository:
    """API keys in a dict, guarded by a lock (held while the change's event is appended)."""

    def __init__(self, events: MemoryEventRepository | None = None) -> None:
        self._by_id: dict[str, ApiKey] = {}
        self._lock = threading.Lock()
        self._events = events if events is not None else MemoryEventRepository()

    async def add(self, key: ApiKey, event: Event | None = None) -> None:
        with self._lock:
            self._check_name(key)
            self._by_id[key.key_id] = key
            if event is not None:
                self._events.record(event)

    def _check_name(self, key: ApiKey) -> None:
        # The stores' partial unique index: one key neither revoked nor superseded per name.
        if key.active and not key.superseded:
            for other in self._by_id.values():
                if (
                    other.key_id != key.key_id
                    and other.name == key.name
                    and other.active
                    and not other.superseded
                ):
                    raise DuplicateKeyName(key.name)

    async def add_if_none(self, key: ApiKey, event: Event | None = None) -> bool:
        with self._lock:
            if self._by_id:
                return False
            self._by_id[key.key_id] = key
            if event is not None:
                self._events.record(event)
            return True

    async def get(self, key_id: str) -> ApiKey:
        return self._find(key_id)

    def _find(self, key_id: str) -> ApiKey:
        try:
            return self._by_id[key_id]
        except KeyError:
            raise ApiKeyNotFound(key_id) from None

    async def list(self) -> Sequence[ApiKey]:
        with self._lock:
            return sorted(self._by_id.values(), key=lambda k: (k.created_at, k.key_id))

    async def revoke(self, key_id: str, at: datetime, event: Event | None = None) -> ApiKey:
        with self._lock:
            key = self._find(key_id)
            if key.active:
                key = self._by_id[key_id] = attrs.evolve(key, revoked_at=at)
                if event is not None:
                    self._events.record(event)
            return key

    async def rotate(
        self, old_key_id: str, old_expires_at: datetime, new: ApiKey, events: Sequence[Event]
    ) -> None:
        with self._lock:
            old = self._find(old_key_id)
            if not old.active or old.superseded:
                raise KeyNotRotatable(
                    old_key_id, "revoked" if not old.active else "already rotated"
                )
            self._by_id[old_key_id] = attrs.evolve(old, superseded=True, expires_at=old_expires_at)
            self._by_id[new.key_id] = new
            for event in events:
                self._events.record(event)

    async def touch(self, uses: Mapping[str, datetime]) -> None:
        with self._lock:
            for key_id, at in uses.items():
                key = self._by_id.get(key_id)
                if key is not None and (key.last_used_at is None or key.last_used_at < at):
                    self._by_id[key_id] = attrs.evolve(key, last_used_at=at)
