"""Use cases on the store itself: upgrade its schema, tell whether it is ready."""

from __future__ import annotations

import attrs

from application.ports import Store


@attrs.frozen
class UpgradeStore:
    """Apply the store's pending migrations."""

    _store: Store

    def __call__(self) -> list[int]:
        return self._store.upgrade()


@attrs.frozen
class CheckReadiness:
    """Raise `StoreUnavailable` unless the store answers."""

    _store: Store

    def __call__(self) -> None:
        self._store.ping()
