"""The composition root: the only place that knows which adapter serves which port."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from dependency_injector import containers, providers

from adapters.connectors.csv import CsvConnector
from adapters.connectors.jsonl import JsonLinesConnector
from adapters.connectors.mysql import MysqlConnector, mysql_pools
from adapters.connectors.observed import BackendBounds, ObservedConnectorRegistry
from adapters.connectors.outbound import OutboundPolicy, system_resolver
from adapters.connectors.parquet import ParquetConnector
from adapters.connectors.plugins import load_connectors
from adapters.connectors.pools import AsyncConnectionPools
from adapters.connectors.postgres import PostgresConnector
from adapters.connectors.resolver_cache import CachingResolver
from adapters.crypto import AesGcmCipher, derived_key, generate_key, load_or_create_key_file
from adapters.oidc import OidcVerifier, parse_algorithms
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
from application.columns import FindColumns
from application.connectors import ListConnectors
from application.deliveries import ListDeliveries, Redeliver
from application.events import ListEvents
from application.history import GetSchemaHistory, InspectSchema
from application.keys import (
    Authenticate,
    BootstrapAdminKey,
    CreateApiKey,
    GetApiKey,
    KeyUses,
    ListApiKeys,
    RevokeApiKey,
    RotateApiKey,
)
from application.ports import Connector, ConnectorRegistry
from application.sources import (
    CheckNewConnection,
    CheckSourceConnection,
    DeleteSource,
    GetSource,
    ListSources,
    RegisterSource,
    Retry,
    StreamSources,
    UpdateSource,
)
from application.watches import (
    ClaimDueChecks,
    CountOverdueChecks,
    DeleteWatch,
    GetWatch,
    ListWatches,
    PutWatch,
    RunCheck,
)
from application.webhooks import (
    AttemptDelivery,
    ClaimDeliveries,
    CountPendingDeliveries,
    CreateWebhook,
    DeleteWebhook,
    GetWebhook,
    ListWebhooks,
    PingWebhook,
    RotateWebhookSecret,
    UpdateWebhook,
    UrlRules,
)
from domain.webhooks import RetryPolicy
from entrypoints.metrics import record_backend_call, record_connector_load_failures
from entrypoints.settings import Settings
from entrypoints.webhook_shapes import encode_payload


def sqlite_path(settings: Settings) -> Path:
    """The SQLite file: `sqlite:///rel/path`, `sqlite:////abs/path` or a bare path."""
    if settings.database_url.startswith("sqlite:///"):
        return Path(settings.database_url.removeprefix("sqlite:///"))
    return Path(settings.database_url)


def memory_secret_key(settings: Settings) -> str | bytes:
    """`TDB_SECRET_KEY`, else a throwaway key: the store goes with the process anyway."""
    return settings.secret_key or generate_key()


def sqlite_secret_key(settings: Settings) -> str | bytes:
    """`TDB_SECRET_KEY`, else a key file beside the SQLite file."""
    if settings.secret_key:
        return settings.secret_key
    path = sqlite_path(settings)
    return load_or_create_key_file(path.with_name(path.name + ".key"))


def sqlite_files(settings: Settings) -> tuple[Path, ...]:
    """The files of the embedded store, which no CSV source may read: the database, its journals
    and the key file beside it."""
    path = sqlite_path(settings)
    return tuple(
        path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm", "-journal", ".key")
    )


def open_sqlite(settings: Settings) -> Iterator[SqliteDatabase]:
    """The SQLite store, closed when the container shuts down."""
    db = SqliteDatabase(sqlite_path(settings), busy_timeout_ms=int(settings.store_timeout * 1000))
    yield db
    db.close()


def shared_secret_key(settings: Settings) -> str:
    """`TDB_SECRET_KEY`, which a store shared by several replicas cannot do without."""
    if not settings.secret_key:
        raise ValueError(
            "TDB_SECRET_KEY is required with the PostgreSQL store: every replica must share one key"
        )
    return settings.secret_key


def open_postgres(settings: Settings) -> Iterator[PostgresDatabase]:
    """The PostgreSQL store and its connection pool, closed when the container shuts down."""
    db = PostgresDatabase(
        settings.database_url,
        max_size=settings.store_pool_size,
        connect_timeout=settings.store_timeout,
        statement_timeout_ms=int(settings.statement_timeout * 1000),
    )
    db.open()
    yield db
    db.close()


class StoreBackend(containers.DeclarativeContainer):
    """One store: its ports (`store`, `sources`, `keys`, `events`, `snapshots`, `watches`,
    `columns`), where the secret key comes from (`secret_key`) and the files no CSV source may
    read (`own_files`)."""

    schemes: ClassVar[tuple[str, ...]] = ()
    """The database URL schemes this store serves."""


class MemoryBackend(StoreBackend):
    """The store in this process's memory (`memory://`): gone when it exits, a throwaway key."""

    schemes = ("memory",)
    settings = providers.Dependency(instance_of=Settings)
    store = providers.Singleton(MemoryStore)
    # Sources and keys append their events to the one trail the store shares.
    events = providers.Singleton(MemoryEventRepository)
    sources = providers.Singleton(MemorySourceRepository, events)
    snapshots = providers.Singleton(MemorySnapshotRepository, sources)
    columns = providers.Singleton(memory_column_index, sources, snapshots)
    keys = providers.Singleton(MemoryApiKeyRepository, events)
    watches = providers.Singleton(MemoryWatchRepository, sources, events)
    # The outbox is fed by the trail, as the SQL stores' trigger feeds theirs.
    webhook_state = providers.Singleton(MemoryWebhooks, events, snapshots)
    webhooks = providers.Singleton(MemoryWebhookRepository, webhook_state)
    deliveries = providers.Singleton(MemoryDeliveryRepository, webhook_state)
    secret_key = providers.Callable(memory_secret_key, settings)
    own_files: providers.Provider[tuple[Path, ...]] = providers.Object(())


class SqliteBackend(StoreBackend):
    """An SQLite file (`sqlite:///FILE` or a bare path), its key file beside it by default."""

    schemes = ("sqlite", "")
    settings = providers.Dependency(instance_of=Settings)
    store = providers.Resource(open_sqlite, settings)
    events = providers.Singleton(SqliteEventRepository, store)
    sources = providers.Singleton(SqliteSourceRepository, store)
    snapshots = providers.Singleton(SqliteSnapshotRepository, store)
    columns = providers.Singleton(SqliteColumnIndex, store)
    keys = providers.Singleton(SqliteApiKeyRepository, store)
    watches = providers.Singleton(SqliteWatchRepository, store)
    webhooks = providers.Singleton(SqliteWebhookRepository, store)
    deliveries = providers.Singleton(SqliteDeliveryRepository, store)
    secret_key = providers.Callable(sqlite_secret_key, settings)
    own_files = providers.Callable(sqlite_files, settings)


class PostgresBackend(StoreBackend):
    """A PostgreSQL database (`postgresql://...`) shared by replicas, which share one key."""

    schemes = ("postgres", "postgresql")
    settings = providers.Dependency(instance_of=Settings)
    store = providers.Resource(open_postgres, settings)
    events = providers.Singleton(PostgresEventRepository, store)
    sources = providers.Singleton(PostgresSourceRepository, store)
    snapshots = providers.Singleton(PostgresSnapshotRepository, store)
    columns = providers.Singleton(PostgresColumnIndex, store)
    keys = providers.Singleton(PostgresApiKeyRepository, store)
    watches = providers.Singleton(PostgresWatchRepository, store)
    webhooks = providers.Singleton(PostgresWebhookRepository, store)
    deliveries = providers.Singleton(PostgresDeliveryRepository, store)
    secret_key = providers.Callable(shared_secret_key, settings)
    own_files: providers.Provider[tuple[Path, ...]] = providers.Object(())


BACKENDS: dict[str, type[StoreBackend]] = {
    "memory": MemoryBackend,
    "sqlite": SqliteBackend,
    "postgres": PostgresBackend,
}
"""Every store this build has, by name; adding a store is adding its backend here."""


def backend_name(settings: Settings) -> str:
    """The store that serves the database URL's scheme."""
    scheme = settings.database_scheme
    for name, backend in BACKENDS.items():
        if scheme in backend.schemes:
            return name
    raise ValueError(f"unsupported TDB_DATABASE_URL scheme {scheme!r}")


def open_source_pools(settings: Settings) -> Iterator[AsyncConnectionPools]:
    """Pooled connections to sources, all closed when the container shuts down."""
    pools = AsyncConnectionPools(
        max_size=settings.source_pool_size,
        idle_timeout=settings.source_pool_idle_timeout,
        max_targets=settings.source_pool_targets,
    )
    yield pools
    pools.close()


def oidc_verifier(settings: Settings) -> OidcVerifier | None:
    """The verifier of the trusted issuer's tokens, or None when no issuer is trusted."""
    if settings.oidc_issuer is None or settings.oidc_audience is None:
        return None
    return OidcVerifier(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        algorithms=parse_algorithms(settings.oidc_algorithms),
        jwks_url=settings.oidc_jwks_url,
        jwks_ttl=settings.oidc_jwks_ttl,
        scopes_claim=settings.oidc_scopes_claim,
        timeout=settings.connect_timeout,
    )


def open_mysql_pools(settings: Settings) -> Iterator[AsyncConnectionPools]:
    """Pooled sessions to MySQL sources, all closed when the container shuts down."""
    pools = mysql_pools(
        max_size=settings.source_pool_size,
        idle_timeout=settings.source_pool_idle_timeout,
        max_targets=settings.source_pool_targets,
    )
    yield pools
    pools.close()


def connector_registry(
    builtins: list[Connector], enabled: tuple[str, ...] | None
) -> ConnectorRegistry:
    """The built-in connectors and the installed plug-ins; those that fail are counted."""
    registry = load_connectors(builtins, enabled)
    record_connector_load_failures(len(registry.failures()))
    return registry


def _backends(settings: providers.Provider[Settings]) -> dict[str, providers.Container[Any]]:
    """Every store's sub-container, given the settings."""
    return {
        name: providers.Container(backend, settings=settings) for name, backend in BACKENDS.items()
    }


def _selected(
    kind: providers.Provider[str], backends: dict[str, providers.Container[Any]], port: str
) -> providers.Selector[Any]:
    """This port of whichever store `kind` names."""
    return providers.Selector(kind, **{name: getattr(b, port) for name, b in backends.items()})


def user_agent() -> str:
    """`tdb/<version>`: what a webhook receiver sees as the caller."""
    try:
        return f"tdb/{importlib.metadata.version('tdb')}"
    except importlib.metadata.PackageNotFoundError:
        return "tdb/unknown"


class Container(containers.DeclarativeContainer):
    """Wires settings to adapters to use cases; the HTTP app and the CLI both draw from it."""

    settings = providers.Dependency(instance_of=Settings)
    store_kind = providers.Singleton(backend_name, settings)
    # One store is picked from the database URL; only its resources are ever started.
    backends = _backends(settings)
    store = _selected(store_kind, backends, "store")
    events = _selected(store_kind, backends, "events")
    sources = _selected(store_kind, backends, "sources")
    keys = _selected(store_kind, backends, "keys")
    watches = _selected(store_kind, backends, "watches")
    # An inspection that finds the columns unchanged asks no store (see RecentHeads).
    history = providers.Singleton(RecentHeads, _selected(store_kind, backends, "snapshots"))

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(RandomIds)
    cipher = providers.Singleton(AesGcmCipher, _selected(store_kind, backends, "secret_key"))
    # Seals the web UI's sessions, with a key of their own derived from the same secret key (so
    # every replica and worker opens a session another one sealed).
    session_cipher = providers.Singleton(
        AesGcmCipher,
        providers.Callable(
            derived_key, _selected(store_kind, backends, "secret_key"), "tdb ui session"
        ),
    )

    resolver = providers.Singleton(
        CachingResolver,
        system_resolver,
        settings.provided.resolver_cache_ttl,
    )
    outbound_policy = providers.Singleton(
        OutboundPolicy.from_text,
        settings.provided.allowed_networks,
        settings.provided.denied_networks,
        resolver,
    )
    source_pools = providers.Resource(open_source_pools, settings)
    postgres_connector = providers.Singleton(
        PostgresConnector,
        connect_timeout=settings.provided.connect_timeout,
        statement_timeout_ms=settings.provided.statement_timeout_ms,
        policy=outbound_policy,
        pools=source_pools,
    )

    csv_connector = providers.Singleton(
        CsvConnector,
        settings.provided.files_directory,
        timeout=settings.provided.connect_timeout,
        store_files=_selected(store_kind, backends, "own_files"),
    )
    mysql_source_pools = providers.Resource(open_mysql_pools, settings)
    mysql_connector = providers.Singleton(
        MysqlConnector,
        connect_timeout=settings.provided.connect_timeout,
        statement_timeout_ms=settings.provided.statement_timeout_ms,
        policy=outbound_policy,
        pools=mysql_source_pools,
    )
    parquet_connector = providers.Singleton(
        ParquetConnector,
        settings.provided.files_directory,
        timeout=settings.provided.connect_timeout,
        store_files=_selected(store_kind, backends, "own_files"),
    )
    jsonl_connector = providers.Singleton(
        JsonLinesConnector,
        settings.provided.files_directory,
        timeout=settings.provided.connect_timeout,
        store_files=_selected(store_kind, backends, "own_files"),
    )

    # The one list of source types: each connector brings its own provider above.
    connectors = providers.Singleton(
        ObservedConnectorRegistry,
        providers.Singleton(
            connector_registry,
            providers.List(
                postgres_connector,
                csv_connector,
                mysql_connector,
                parquet_connector,
                jsonl_connector,
            ),
            settings.provided.enabled_connectors,
        ),
        # Every inspection and connection test is counted and timed; a failure is logged.
        providers.Object(record_backend_call),
        # ... and bounded, for every entrypoint: so many at once, each within its deadline.
        providers.Singleton(
            BackendBounds,
            at_once=settings.provided.inspect_concurrency,
            deadline=settings.provided.inspect_deadline,
        ),
    )

    register_source = providers.Factory(
        RegisterSource, sources=sources, connectors=connectors, cipher=cipher, clock=clock, ids=ids
    )
    list_sources = providers.Factory(ListSources, sources=sources)
    stream_sources = providers.Factory(StreamSources, sources=sources)
    get_source = providers.Factory(
        GetSource,
        sources=sources,
        connectors=connectors,
        cipher=cipher,
        events=events,
        clock=clock,
        ids=ids,
    )
    update_source = providers.Factory(
        UpdateSource,
        sources=sources,
        connectors=connectors,
        cipher=cipher,
        events=events,
        clock=clock,
        ids=ids,
        # A change that keeps losing races gives up as a store that does not answer would.
        retry=providers.Factory(Retry, settings.provided.store_timeout),
    )
    check_source_connection = providers.Factory(
        CheckSourceConnection, sources=sources, connectors=connectors, cipher=cipher, clock=clock
    )
    check_new_connection = providers.Factory(CheckNewConnection, connectors=connectors, clock=clock)
    inspect_schema = providers.Factory(
        InspectSchema,
        sources=sources,
        connectors=connectors,
        cipher=cipher,
        clock=clock,
        history=history,
        ids=ids,
    )
    schema_history = providers.Factory(GetSchemaHistory, parents=sources, history=history)
    delete_source = providers.Factory(
        DeleteSource, sources=sources, connectors=connectors, clock=clock, ids=ids
    )
    list_events = providers.Factory(ListEvents, events=events)
    find_columns = providers.Factory(
        FindColumns, columns=_selected(store_kind, backends, "columns")
    )
    list_connectors = providers.Factory(ListConnectors, connectors=connectors)

    create_api_key = providers.Factory(
        CreateApiKey, keys=keys, clock=clock, ids=ids, max_days=settings.provided.key_max_days
    )
    bootstrap_admin_key = providers.Factory(
        BootstrapAdminKey,
        keys=keys,
        create=create_api_key,
        max_days=settings.provided.key_max_days,
    )
    list_api_keys = providers.Factory(ListApiKeys, keys=keys)
    get_api_key = providers.Factory(GetApiKey, keys=keys)
    revoke_api_key = providers.Factory(RevokeApiKey, keys=keys, clock=clock, ids=ids)
    rotate_api_key = providers.Factory(
        RotateApiKey, keys=keys, create=create_api_key, clock=clock, ids=ids
    )
    # Tokens that are not tdb keys are OIDC tokens when an issuer is trusted.
    token_verifier = providers.Singleton(oidc_verifier, settings)
    authenticate = providers.Factory(Authenticate, keys=keys, clock=clock, tokens=token_verifier)
    # When each key was last used: one per process, written behind the requests.
    key_uses = providers.Singleton(KeyUses, keys=keys)

    # The store's own operations are its port's methods (`application.ports.Store`): apply
    # pending migrations, raise `StoreUnavailable` unless it answers, the connections held
    # open and in use, the sources it holds (for the operator's gauge, not for a client).
    upgrade_store = store.provided.upgrade
    check_readiness = store.provided.ping
    store_usage = store.provided.usage
    count_sources = sources.provided.count

    put_watch = providers.Factory(
        PutWatch,
        sources=sources,
        watches=watches,
        clock=clock,
        interval_min=settings.provided.watch_min_interval,
    )
    get_watch = providers.Factory(GetWatch, sources=sources, watches=watches)
    delete_watch = providers.Factory(DeleteWatch, sources=sources, watches=watches)
    list_watches = providers.Factory(ListWatches, store=watches)
    count_overdue_checks = providers.Factory(CountOverdueChecks, watches=watches, clock=clock)
    claim_due_checks = providers.Factory(
        ClaimDueChecks, watches=watches, clock=clock, lease_seconds=settings.provided.watch_lease
    )
    run_check = providers.Factory(
        RunCheck,
        inspect=inspect_schema,
        watches=watches,
        clock=clock,
        ids=ids,
        failures_to_report=settings.provided.watch_failures,
    )
    webhooks = _selected(store_kind, backends, "webhooks")
    deliveries = _selected(store_kind, backends, "deliveries")
    webhook_transport = providers.Singleton(
        H11WebhookTransport,
        outbound_policy,
        timeout=settings.provided.webhook_timeout,
        user_agent=providers.Callable(user_agent),
    )
    webhook_url_rules = providers.Singleton(UrlRules, settings.provided.webhook_allow_http)
    create_webhook = providers.Factory(
        CreateWebhook,
        webhooks=webhooks,
        transport=webhook_transport,
        cipher=cipher,
        clock=clock,
        ids=ids,
        rules=webhook_url_rules,
    )
    list_webhooks = providers.Factory(ListWebhooks, webhooks=webhooks)
    get_webhook = providers.Factory(GetWebhook, webhooks=webhooks)
    update_webhook = providers.Factory(
        UpdateWebhook,
        webhooks=webhooks,
        transport=webhook_transport,
        clock=clock,
        ids=ids,
        rules=webhook_url_rules,
    )
    delete_webhook = providers.Factory(DeleteWebhook, webhooks=webhooks, clock=clock, ids=ids)
    rotate_webhook_secret = providers.Factory(
        RotateWebhookSecret, webhooks=webhooks, cipher=cipher, clock=clock, ids=ids
    )
    ping_webhook = providers.Factory(
        PingWebhook,
        webhooks=webhooks,
        deliveries=deliveries,
        encode=providers.Object(encode_payload),
        clock=clock,
        ids=ids,
    )
    list_deliveries = providers.Factory(ListDeliveries, parents=webhooks, children=deliveries)
    redeliver = providers.Factory(Redeliver, webhooks=webhooks, deliveries=deliveries, clock=clock)
    count_pending_deliveries = providers.Factory(CountPendingDeliveries, deliveries=deliveries)
    claim_deliveries = providers.Factory(
        ClaimDeliveries,
        deliveries=deliveries,
        clock=clock,
        lease_seconds=settings.provided.webhook_lease,
    )
    attempt_delivery = providers.Factory(
        AttemptDelivery,
        deliveries=deliveries,
        transport=webhook_transport,
        encode=providers.Object(encode_payload),
        cipher=cipher,
        clock=clock,
        retry=providers.Factory(RetryPolicy, settings.provided.webhook_retry_delays),
    )


def build_container(settings: Settings) -> Container:
    """A container for these settings (resources not yet initialised)."""
    return Container(settings=providers.Object(settings))
