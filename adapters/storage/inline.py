"""The lookup of a store whose reads never wait (in memory, SQLite in WAL mode): its repository,
read in place on the event loop, as a thread hop would cost more than the read."""

from __future__ import annotations

from uuid import UUID

from application.ports import SourceRepository
from domain.sources import Source


class InlineSourceLookup:
    """Sources by id, straight from the repository."""

    def __init__(self, sources: SourceRepository) -> None:
        self._sources = sources

    async def get(self, source_id: UUID) -> Source:
        return self._sources.get(source_id)

    async def close(self) -> None:
        """Nothing is held."""
