"""Use cases on schemas: inspect the live columns (kept when they change), read the history."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias
from uuid import UUID

import attrs

from application.ports import (
    Clock,
    IdGenerator,
    SnapshotRepository,
)
from application.sources import (
    CHILD_LIMIT_DEFAULT,
    ChildListing,
    ChildPageQuery,
    SecretsUseCase,
    guarded,
)
from domain.events import Action, Event
from domain.history import (
    HistoryEntry,
    HistoryPage,
    SchemaSnapshot,
    SnapshotHead,
    diff,
    fingerprint,
    history_page,
)
from domain.keys import Principal, Scope
from domain.sources import Column, Source, SourceSchema

HISTORY_LIMIT_DEFAULT = CHILD_LIMIT_DEFAULT


@attrs.frozen
class InspectSchemaQuery:
    """Read the live column schema of one source."""

    actor: Principal
    source_id: UUID


@guarded(Scope.READ)
@attrs.frozen
class InspectSchema(SecretsUseCase):
    """Ask the source's backend for its columns, now, and keep them if they changed."""

    _clock: Clock
    _history: SnapshotRepository
    _ids: IdGenerator

    async def __call__(self, query: InspectSchemaQuery) -> SourceSchema:
        source = await self._sources.get(query.source_id)
        # Read before the backend is asked: a snapshot is stored only on top of this one, so an
        # inspection that saw older columns than a concurrent one cannot bury its newer result.
        head = await self._history.head(source.id)
        connector = self._connectors.get(source.source_type)
        columns = tuple(await connector.inspect(self._in_clear(source)[1].connection))
        inspected_at = self._clock.now()
        printed = fingerprint(columns)
        recorded = None
        if head is None or head.fingerprint != printed:
            recorded = await self._record(query.actor, source, head, columns, printed, inspected_at)
        return SourceSchema(
            source_id=source.id,
            source_name=source.name.value,
            columns=columns,
            inspected_at=inspected_at,
            fingerprint=printed,
            recorded=recorded,
        )

    async def _record(
        self,
        actor: Principal,
        source: Source,
        head: SnapshotHead | None,
        columns: tuple[Column, ...],
        printed: str,
        observed_at: datetime,
    ) -> HistoryEntry | None:
        """The entry stored for these columns; None if another inspection stored one first."""
        previous = await self._history.latest(source.id) if head is not None else None
        if head is not None and (previous is None or previous.sequence != head.sequence):
            return None
        entry = HistoryEntry(
            SchemaSnapshot(
                source_id=source.id,
                sequence=head.sequence + 1 if head is not None else 1,
                fingerprint=printed,
                columns=columns,
                observed_at=observed_at,
            ),
            diff(previous.columns, columns) if previous is not None else (),
        )
        event = Event(
            id=self._ids.new(),
            at=observed_at,
            actor=actor.identity,
            action=Action.SOURCE_SCHEMA_CHANGED,
            source_id=source.id,
            source_name=source.name.value,
            breaking=entry.breaking,
        )
        return entry if await self._history.append(entry.snapshot, event) else None


SchemaHistoryQuery: TypeAlias = ChildPageQuery[None, int]
"""Read one source's schema history (`parent_id`: the source), newest first, one page at a time
(`before`: a snapshot's sequence)."""


@guarded(Scope.READ)
@attrs.frozen
class GetSchemaHistory(ChildListing[None, int, HistoryPage]):
    """A source's snapshots newest first, each with its changes against the one before
    (`parents`: the sources)."""

    _history: SnapshotRepository

    async def _page(self, query: SchemaHistoryQuery) -> HistoryPage:
        # One snapshot more than the page: it tells whether there is a next page, and it is
        # what the page's oldest snapshot is compared with.
        snapshots = await self._history.newest_first(query.parent_id, query.limit + 1, query.before)
        return history_page(snapshots, query.limit)
