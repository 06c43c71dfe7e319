"""Use cases on the store itself: upgrade its schema, tell whether it is ready, how it is used."""

from __future__ import annotations

import attrs

from application.ports import SourceRepository, Store


@attrs.frozen
class UpgradeStore:
    """Apply the store's pending migrations."""

    _store: Store

    async def __call__(self) -> list[int]:
        return await self._store.upgrade()


@attrs.frozen
class CheckReadiness:
    """Raise `StoreUnavailable` unless the store answers."""

    _store: Store

    async def __call__(self) -> None:
        await self._store.ping()


@attrs.frozen
class StoreUsage:
    """This process's connections to the store: (held open, in use now)."""

    _store: Store

    def __call__(self) -> tuple[int, int]:
        return self._store.usage()


@attrs.frozen
class CountSources:
    """How many sources the registry holds (for the operator's gauge, not for a client)."""

    _sources: SourceRepository

    async def __call__(self) -> int:
        return await self._sources.count()
