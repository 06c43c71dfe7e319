"""Factories of fresh, empty stores, one kind per adapter, so each test starts from nothing."""

from __future__ import annotations

import abc
import itertools
import queue
import secrets
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from psycopg import sql

from adapters.storage import postgres, sqlite
from adapters.storage.columns import memory_column_index
from adapters.storage.memory import (
    MemoryApiKeyRepository,
    MemoryEventRepository,
    MemorySnapshotRepository,
    MemorySourceRepository,
    MemoryStore,
)
from adapters.storage.memory_watches import MemoryWatchRepository
from adapters.storage.memory_webhooks import (
    MemoryDeliveryRepository,
    MemoryWebhookRepository,
    MemoryWebhooks,
)
from adapters.storage.postgres import (
    PostgresApiKeyRepository,
    PostgresDatabase,
    PostgresEventRepository,
    PostgresSnapshotRepository,
    PostgresSourceRepository,
)
from adapters.storage.postgres_columns import PostgresColumnIndex
from adapters.storage.postgres_watches import PostgresWatchRepository
from adapters.storage.postgres_webhooks import (
    PostgresDeliveryRepository,
    PostgresWebhookRepository,
)
from adapters.storage.sqlite import (
    SqliteApiKeyRepository,
    SqliteDatabase,
    SqliteEventRepository,
    SqliteSnapshotRepository,
    SqliteSourceRepository,
)
from adapters.storage.sqlite_columns import SqliteColumnIndex
from adapters.storage.sqlite_watches import SqliteWatchRepository
from adapters.storage.sqlite_webhooks import SqliteDeliveryRepository, SqliteWebhookRepository
from application.columns import ColumnIndex
from application.ports import (
    ApiKeyRepository,
    EventRepository,
    SnapshotRepository,
    SourceRepository,
    Store,
)
from application.watch_ports import WatchRepository
from application.webhook_ports import DeliveryRepository, WebhookRepository
from tests.helpers import Synced, run

FRESH_STORE_PER_EXAMPLE = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
"""For a hypothesis test of `new_stores`: that fixture hands out a factory, not a store, and each
example opens a fresh, empty store with it; the factory outliving the examples is intended."""


class Stores:
    """One store seen through each of its ports, each through `Synced`: a method called from a
    test's own code gives its result, one called from code on an event loop its coroutine."""

    def __init__(
        self,
        store: Store,
        sources: SourceRepository,
        keys: ApiKeyRepository,
        history: SnapshotRepository,
        events: EventRepository,
        columns: ColumnIndex,
        watches: WatchRepository | None = None,
        webhooks: WebhookRepository | None = None,
        deliveries: DeliveryRepository | None = None,
    ) -> None:
        self.store: Any = Synced(store)
        self.watches: Any = Synced(watches)
        self.sources: Any = Synced(sources)
        self.keys: Any = Synced(keys)
        self.history: Any = Synced(history)
        self.events: Any = Synced(events)
        self.webhooks: Any = Synced(webhooks)
        self.deliveries: Any = Synced(deliveries)
        self.columns: Any = Synced(columns)


class StoreFactory(abc.ABC):
    """Opens fresh, empty stores of one adapter and closes them when the block ends."""

    versions: tuple[int, ...] = ()
    """The migration versions a fresh store of this adapter applies."""
    marks: tuple[pytest.MarkDecorator, ...] = ()
    """Marks of the tests that use this adapter (a server it needs, say)."""
    separate_handles = True
    """Whether separate handles on one store exist (a file or a server several open)."""

    @classmethod
    @abc.abstractmethod
    def opened(cls, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
        """A factory for one test, closed after it (a generator, as a fixture is)."""

    @contextmanager
    def __call__(self, *, upgraded: bool = True) -> Iterator[Stores]:
        with self.shared(1, upgraded=upgraded) as (stores,):
            yield stores

    @abc.abstractmethod
    def shared(
        self, handles: int, *, upgraded: bool = True
    ) -> AbstractContextManager[list[Stores]]:
        """Several handles on one fresh store, as separate processes would hold them."""


class MemoryStores(StoreFactory):
    """In-memory stores; one object is the only handle there is, so every handle is the same."""

    separate_handles = False

    @classmethod
    def opened(cls, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
        yield cls()

    @contextmanager
    def shared(self, handles: int, *, upgraded: bool = True) -> Iterator[list[Stores]]:
        events = MemoryEventRepository()
        sources = MemorySourceRepository(events)
        snapshots = MemorySnapshotRepository(sources)
        webhooks = MemoryWebhooks(events, snapshots)
        stores = Stores(
            MemoryStore(),
            sources,
            MemoryApiKeyRepository(events),
            snapshots,
            events,
            memory_column_index(sources, snapshots),
            MemoryWatchRepository(sources, events),
            MemoryWebhookRepository(webhooks),
            MemoryDeliveryRepository(webhooks),
        )
        yield [stores] * handles


class SqliteStores(StoreFactory):
    """SQLite stores, each a new file in a test's temporary directory."""

    versions = tuple(version for version, _ in sqlite.MIGRATIONS)

    @classmethod
    def opened(cls, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
        yield cls(tmp_path)

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._numbers = itertools.count()

    @contextmanager
    def shared(self, handles: int, *, upgraded: bool = True) -> Iterator[list[Stores]]:
        path = self.directory / f"store-{next(self._numbers)}.db"
        databases = [SqliteDatabase(path) for _ in range(handles)]
        try:
            if upgraded:
                databases[0].migrate()
            yield [
                Stores(
                    db,
                    SqliteSourceRepository(db),
                    SqliteApiKeyRepository(db),
                    SqliteSnapshotRepository(db),
                    SqliteEventRepository(db),
                    SqliteColumnIndex(db),
                    SqliteWatchRepository(db),
                    SqliteWebhookRepository(db),
                    SqliteDeliveryRepository(db),
                )
                for db in databases
            ]
        finally:
            for db in databases:
                run(db.release())
                db.close()


def with_search_path(url: str, schema: str) -> str:
    """The URL with its sessions' search_path set to one schema."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


class PostgresStores(StoreFactory):
    """PostgreSQL stores, each a new schema in the session's throwaway database."""

    versions = tuple(version for version, _ in postgres.MIGRATIONS)
    marks = (pytest.mark.postgres,)

    @classmethod
    def opened(cls, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
        factory = cls(request.getfixturevalue("postgres_url"))
        yield factory
        factory.close()

    def __init__(self, url: str) -> None:
        self.url = url
        self._admin: psycopg.Connection[tuple[object, ...]] | None = None
        # Schemas are dropped on a thread of their own, while the next example runs: a drop
        # costs about as much as the migrations that fill a new schema.
        self._spent: queue.Queue[str | None] = queue.Queue()
        self._dropper: threading.Thread | None = None

    def close(self) -> None:
        """Drop the schemas still waiting, then close the connection that creates them."""
        if self._dropper is not None:
            self._spent.put(None)
            self._dropper.join()
        if self._admin is not None:
            self._admin.close()

    def _drop_spent(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while (schema := self._spent.get()) is not None:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))

    @contextmanager
    def schema_url(self) -> Iterator[str]:
        """The URL of a new, empty schema, dropped when the block ends."""
        if self._admin is None:
            self._admin = psycopg.connect(self.url, autocommit=True)
        schema = f"contract_{secrets.token_hex(6)}"
        self._admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield with_search_path(self.url, schema)
        finally:
            if self._dropper is None:
                self._dropper = threading.Thread(target=self._drop_spent, name="schema-dropper")
                self._dropper.start()
            self._spent.put(schema)

    @contextmanager
    def shared(self, handles: int, *, upgraded: bool = True) -> Iterator[list[Stores]]:
        with self.schema_url() as url:
            databases = [PostgresDatabase(url, max_size=8) for _ in range(handles)]
            try:
                if upgraded:
                    run(databases[0].upgrade())
                yield [
                    Stores(
                        db,
                        PostgresSourceRepository(db),
                        PostgresApiKeyRepository(db),
                        PostgresSnapshotRepository(db),
                        PostgresEventRepository(db),
                        PostgresColumnIndex(db),
                        PostgresWatchRepository(db),
                        PostgresWebhookRepository(db),
                        PostgresDeliveryRepository(db),
                    )
                    for db in databases
                ]
            finally:
                for db in databases:
                    run(db.release())
                    db.close()


FACTORIES: dict[str, type[StoreFactory]] = {
    "memory": MemoryStores,
    "sqlite": SqliteStores,
    "postgres": PostgresStores,
}
"""Every storage adapter's factory; adding a store is adding its factory here."""

ADAPTERS = [pytest.param(name, id=name, marks=f.marks) for name, f in FACTORIES.items()]
"""Every storage adapter; a test parametrized over these runs once per adapter."""

SQL_ADAPTERS = [p for p, f in zip(ADAPTERS, FACTORIES.values(), strict=True) if f.separate_handles]
"""The adapters with a schema and a server or file that separate handles can share."""
