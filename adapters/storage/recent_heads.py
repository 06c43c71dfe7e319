"""A snapshot store in front of another that remembers each source's newest snapshot briefly."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from uuid import UUID

from application.ports import SnapshotRepository
from domain.events import Event
from domain.history import SchemaSnapshot, SnapshotHead

HEAD_TTL_SECONDS = 1.0
SOURCES_MAX = 10_000


class RecentHeads:
    """`head()` from memory for `ttl` seconds after this process read or wrote it.

    An inspection that finds the columns unchanged then does not touch the store at all. What
    the memory says was the store's newest snapshot at a moment before the inspection began, and
    appends stay a compare-and-set in the store, so a head that another process has moved past
    can only make this process record a change up to `ttl` later (its append fails, or the
    columns look unchanged): never twice, and never on top of a newer snapshot. The other calls
    go to the store, and what they learn of the newest snapshot is remembered.
    """

    def __init__(
        self,
        store: SnapshotRepository,
        ttl: float = HEAD_TTL_SECONDS,
        max_sources: int = SOURCES_MAX,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._max_sources = max_sources
        self._monotonic = monotonic
        self._heads: OrderedDict[UUID, tuple[SnapshotHead | None, float]] = OrderedDict()
        self._lock = threading.Lock()

    async def head(self, source_id: UUID) -> SnapshotHead | None:
        now = self._monotonic()
        remembered, head = self.recent(source_id, now)
        if remembered:
            return head
        head = await self._store.head(source_id)
        self._remember(source_id, head, now)
        return head

    def recent(self, source_id: UUID, now: float | None = None) -> tuple[bool, SnapshotHead | None]:
        """Whether the head is remembered (read or written less than `ttl` ago), and which."""
        now = self._monotonic() if now is None else now
        with self._lock:
            known = self._heads.get(source_id)
            if known is not None and now - known[1] < self._ttl:
                self._heads.move_to_end(source_id)
                return True, known[0]
        return False, None

    async def latest(self, source_id: UUID) -> SchemaSnapshot | None:
        now = self._monotonic()
        snapshot = await self._store.latest(source_id)
        self._remember(source_id, _head(snapshot), now)
        return snapshot

    async def append(self, snapshot: SchemaSnapshot, event: Event | None = None) -> bool:
        now = self._monotonic()
        stored = await self._store.append(snapshot, event)
        if stored:
            self._remember(snapshot.source_id, _head(snapshot), now)
        else:
            with self._lock:
                self._heads.pop(snapshot.source_id, None)
        return stored

    async def newest_first(
        self, source_id: UUID, limit: int, before: int | None = None
    ) -> Sequence[SchemaSnapshot]:
        return await self._store.newest_first(source_id, limit, before)

    def _remember(self, source_id: UUID, head: SnapshotHead | None, read_at: float) -> None:
        with self._lock:
            known = self._heads.get(source_id)
            # Of two reads that finish out of order, the one that saw the later snapshot stays.
            if known is not None and _sequence(known[0]) > _sequence(head):
                return
            self._heads[source_id] = (head, read_at)
            self._heads.move_to_end(source_id)
            while len(self._heads) > self._max_sources:
                self._heads.popitem(last=False)


def _head(snapshot: SchemaSnapshot | None) -> SnapshotHead | None:
    return SnapshotHead(snapshot.sequence, snapshot.fingerprint) if snapshot is not None else None


def _sequence(head: SnapshotHead | None) -> int:
    return head.sequence if head is not None else 0
