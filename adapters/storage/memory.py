"""In-memory stores: the fakes the use-case tests run on, held to the contract of the real ones."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

import attrs

from adapters.storage.sql import page
from domain.errors import ApiKeyNotFound, DuplicateSourceName, SourceNotFound
from domain.history import SchemaSnapshot, SnapshotHead
from domain.keys import ApiKey
from domain.sources import PageKey, Source, SourceFilter, SourcePage, SourceSummary, sort_key


class MemoryStore:
    """Nothing to migrate, always ready."""

    def upgrade(self) -> list[int]:
        return []

    def ping(self) -> None:
        return None


class MemorySourceRepository:
    """Sources in a dict, guarded by a lock."""

    def __init__(self) -> None:
        self._by_id: dict[UUID, Source] = {}
        self._lock = threading.Lock()
        self._dependents: list[Callable[[UUID], None]] = []

    def on_remove(self, forget: Callable[[UUID], None]) -> None:
        """Have `forget(source_id)` called inside every removal (what a cascade does in SQL)."""
        self._dependents.append(forget)

    def add(self, source: Source) -> None:
        with self._lock:
            if any(s.name == source.name for s in self._by_id.values()):
                raise DuplicateSourceName(source.name.value)
            self._by_id[source.id] = source

    def get(self, source_id: UUID) -> Source:
        try:
            return self._by_id[source_id]
        except KeyError:
            raise SourceNotFound(source_id) from None

    def list(
        self, source_filter: SourceFilter, limit: int | None = None, after: PageKey | None = None
    ) -> SourcePage:
        with self._lock:
            matching = sorted(
                (s for s in self._by_id.values() if source_filter.matches(s)), key=sort_key
            )
        if after is not None:
            matching = [s for s in matching if sort_key(s) > (after.registered_at, after.id)]
        return page([SourceSummary.of(s) for s in matching], limit)

    def remove(self, source_id: UUID) -> None:
        with self._lock:
            if self._by_id.pop(source_id, None) is None:
                raise SourceNotFound(source_id)
            for forget in self._dependents:
                forget(source_id)


class MemorySnapshotRepository:
    """Snapshots in lists per source, guarded by a lock; a removed source's history goes too."""

    def __init__(self, sources: MemorySourceRepository) -> None:
        self._sources = sources
        self._by_source: dict[UUID, list[SchemaSnapshot]] = {}
        self._lock = threading.Lock()
        sources.on_remove(self._forget)

    def _forget(self, source_id: UUID) -> None:
        with self._lock:
            self._by_source.pop(source_id, None)

    def _existing(self, source_id: UUID) -> list[SchemaSnapshot]:
        # Called under the lock.
        self._sources.get(source_id)
        return self._by_source.setdefault(source_id, [])

    def _snapshots(self, source_id: UUID) -> list[SchemaSnapshot]:
        with self._lock:
            try:
                return list(self._existing(source_id))
            except SourceNotFound:
                return []

    def head(self, source_id: UUID) -> SnapshotHead | None:
        snapshots = self._snapshots(source_id)
        if not snapshots:
            return None
        return SnapshotHead(snapshots[-1].sequence, snapshots[-1].fingerprint)

    def latest(self, source_id: UUID) -> SchemaSnapshot | None:
        snapshots = self._snapshots(source_id)
        return snapshots[-1] if snapshots else None

    def append(self, snapshot: SchemaSnapshot) -> bool:
        with self._lock:
            snapshots = self._existing(snapshot.source_id)
            if snapshot.sequence != len(snapshots) + 1:
                return False
            snapshots.append(snapshot)
            return True

    def newest_first(
        self, source_id: UUID, limit: int, before: int | None = None
    ) -> Sequence[SchemaSnapshot]:
        snapshots = self._snapshots(source_id)
        if before is not None:
            snapshots = [s for s in snapshots if s.sequence < before]
        return snapshots[::-1][:limit]


class MemoryApiKeyRepository:
    """API keys in a dict, guarded by a lock."""

    def __init__(self) -> None:
        self._by_id: dict[str, ApiKey] = {}
        self._lock = threading.Lock()

    def add(self, key: ApiKey) -> None:
        with self._lock:
            self._by_id[key.key_id] = key

    def add_if_none(self, key: ApiKey) -> bool:
        with self._lock:
            if self._by_id:
                return False
            self._by_id[key.key_id] = key
            return True

    def get(self, key_id: str) -> ApiKey:
        try:
            return self._by_id[key_id]
        except KeyError:
            raise ApiKeyNotFound(key_id) from None

    def list(self) -> Sequence[ApiKey]:
        with self._lock:
            return sorted(self._by_id.values(), key=lambda k: (k.created_at, k.key_id))

    def revoke(self, key_id: str, at: datetime) -> ApiKey:
        with self._lock:
            key = self.get(key_id)
            if key.active:
                key = self._by_id[key_id] = attrs.evolve(key, revoked_at=at)
            return key
