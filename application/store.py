"""Use cases on the store itself: upgrade its schema, tell whether it is ready."""

from __future__ import annotations

from application.ports import Store


class UpgradeStore:
    """Apply the store's pending migrations."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __call__(self) -> list[int]:
        return self._store.upgrade()


class CheckReadiness:
    """Raise `StoreUnavailable` unless the store answers."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __call__(self) -> None:
        self._store.ping()
