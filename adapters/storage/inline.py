"""Ports for the event loop of a store whose calls never wait: its repository, called in place
on the loop, as a thread hop would cost more than the call.

Reads never wait in memory or in SQLite's WAL mode. Writes never wait only in memory: an SQLite
writer may wait for another process's lock, so SQLite's writes are offloaded instead.
"""

from __future__ import annotations

from uuid import UUID

from application.ports import SourceRepository
from domain.events import Event
from domain.sources import Source


class InlineSourceLookup:
    """Sources by id, straight from the repository."""

    def __init__(self, sources: SourceRepository) -> None:
        self._sources = sources

    async def get(self, source_id: UUID) -> Source:
        return self._sources.get(source_id)

    async def close(self) -> None:
        """Nothing is held."""


class InlineSourceWrites:
    """Sources added and changed straight in the repository (which must never wait: in memory)."""

    def __init__(self, sources: SourceRepository) -> None:
        self._sources = sources

    async def add(self, source: Source, event: Event | None = None) -> None:
        self._sources.add(source, event)

    async def update(
        self, source: Source, expected_version: int, event: Event | None = None
    ) -> None:
        self._sources.update(source, expected_version, event)

    async def close(self) -> None:
        """Every write ended before it returned."""
