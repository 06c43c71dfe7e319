"""Every adapter and test double, checked by mypy against the port it stands for.

Nothing here runs: each function below only declares, with a Protocol type, the parts that a
backend or a process is built from. mypy (run over `tests/` by tests/test_static_checks.py) fails
the build when an adapter's method no longer matches its port: a renamed parameter, a dropped
default, a changed return type. The contract suites then check what the signatures cannot say.
Adding an adapter: add its assignments here, next to those of its siblings.
"""

from __future__ import annotations

from pathlib import Path

from adapters.connectors.csv import CsvConnector
from adapters.connectors.jsonl import JsonLinesConnector
from adapters.connectors.mysql import MysqlConnector
from adapters.connectors.observed import ObservedConnector, ObservedConnectorRegistry
from adapters.connectors.outbound import OutboundPolicy
from adapters.connectors.parquet import ParquetConnector
from adapters.connectors.plugins import PluginConnector, load_connectors
from adapters.connectors.postgres import PostgresConnector
from adapters.connectors.registry import StaticConnectorRegistry
from adapters.crypto import AesGcmCipher
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
from adapters.storage.recent_heads import RecentHeads
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
from adapters.system import RandomIds, SystemClock
from adapters.webhooks.transport import H11WebhookTransport
from application.columns import ColumnIndex
from application.ports import (
    ApiKeyRepository,
    Clock,
    Connector,
    ConnectorRegistry,
    EventRepository,
    IdGenerator,
    SecretCipher,
    SnapshotRepository,
    SourceRepository,
    Store,
)
from application.watch_ports import WatchRepository
from application.webhook_ports import (
    DeliveryRepository,
    PayloadEncoder,
    WebhookRepository,
    WebhookTransport,
)
from entrypoints.webhook_shapes import encode_payload
from tests.fakes import CountingIds, FakeConnector, SteppingClock


def memory_store_conforms() -> None:
    events = MemoryEventRepository()
    sources = MemorySourceRepository(events)
    _store: Store = MemoryStore()
    _sources: SourceRepository = sources
    _events: EventRepository = events
    history = MemorySnapshotRepository(sources, events)
    _history: SnapshotRepository = history
    _keys: ApiKeyRepository = MemoryApiKeyRepository(events)
    _columns: ColumnIndex = memory_column_index(sources, history)
    _watches: WatchRepository = MemoryWatchRepository(sources, events)


def sqlite_store_conforms(path: Path) -> None:
    db = SqliteDatabase(path)
    _store: Store = db
    _sources: SourceRepository = SqliteSourceRepository(db)
    _events: EventRepository = SqliteEventRepository(db)
    _history: SnapshotRepository = SqliteSnapshotRepository(db)
    _keys: ApiKeyRepository = SqliteApiKeyRepository(db)
    _columns: ColumnIndex = SqliteColumnIndex(db)
    _watches: WatchRepository = SqliteWatchRepository(db)


def postgres_store_conforms(url: str) -> None:
    db = PostgresDatabase(url)
    _store: Store = db
    _sources: SourceRepository = PostgresSourceRepository(db)
    _events: EventRepository = PostgresEventRepository(db)
    _history: SnapshotRepository = PostgresSnapshotRepository(db)
    _keys: ApiKeyRepository = PostgresApiKeyRepository(db)
    _columns: ColumnIndex = PostgresColumnIndex(db)
    _watches: WatchRepository = PostgresWatchRepository(db)


def store_decorators_conform(history: SnapshotRepository) -> None:
    _recent: SnapshotRepository = RecentHeads(history)


def connectors_conform(csv_root: Path) -> None:
    postgres: Connector = PostgresConnector()
    csv: Connector = CsvConnector(csv_root)
    _fake: Connector = FakeConnector()
    _mysql: Connector = MysqlConnector()
    _parquet: Connector = ParquetConnector(csv_root)
    _jsonl: Connector = JsonLinesConnector(csv_root)
    _plugin: Connector = PluginConnector("fake", object())
    _loaded: ConnectorRegistry = load_connectors([postgres, csv])
    catalog: ConnectorRegistry = StaticConnectorRegistry([postgres, csv])
    _observed: Connector = ObservedConnector(postgres, lambda *_: None)
    _observed_all: ConnectorRegistry = ObservedConnectorRegistry(catalog, lambda *_: None)


def system_parts_conform(key: str) -> None:
    _cipher: SecretCipher = AesGcmCipher(key)
    _clock: Clock = SystemClock()
    _stepping: Clock = SteppingClock()
    _ids: IdGenerator = RandomIds()
    _counting: IdGenerator = CountingIds()


def webhook_stores_conform(path: Path, url: str) -> None:
    events = MemoryEventRepository()
    state = MemoryWebhooks(events, MemorySnapshotRepository(MemorySourceRepository(events)))
    _memory: WebhookRepository = MemoryWebhookRepository(state)
    _memory_outbox: DeliveryRepository = MemoryDeliveryRepository(state)
    lite = SqliteDatabase(path)
    _sqlite: WebhookRepository = SqliteWebhookRepository(lite)
    _sqlite_outbox: DeliveryRepository = SqliteDeliveryRepository(lite)
    pg = PostgresDatabase(url)
    _postgres: WebhookRepository = PostgresWebhookRepository(pg)
    _postgres_outbox: DeliveryRepository = PostgresDeliveryRepository(pg)


def webhook_transport_conforms() -> None:
    _transport: WebhookTransport = H11WebhookTransport(OutboundPolicy(), 10, "tdb/test")
    _encode: PayloadEncoder = encode_payload
