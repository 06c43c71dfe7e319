"""The ports: what the use cases need from the world, as structural protocols."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from domain.connections import ConnectionField, ConnectorLoadFailure
from domain.events import Event, EventFilter, EventKey, EventPage
from domain.history import SchemaSnapshot, SnapshotHead
from domain.keys import ApiKey, VerifiedToken
from domain.sources import Column, PageKey, Source, SourceFilter, SourcePage, SourceSummary


class SourceRepository(Protocol):
    """Where registered sources are kept; each change and its `event` commit together.

    Awaiting a method never blocks the event loop. A read sees every change committed before it
    began. Once awaiting a write has begun, the write runs to its end even if the awaiting code
    is cancelled.
    """

    async def add(self, source: Source, event: Event | None = None) -> None:
        """Store a new source; raise `DuplicateSourceName` if its name is taken."""

    async def update(
        self, source: Source, expected_version: int, event: Event | None = None
    ) -> None:
        """Replace the source if it is still at `expected_version`, else `VersionMismatch`."""

    async def get(self, source_id: UUID) -> Source:
        """The source with this id; raise `SourceNotFound` if there is none."""

    async def list(
        self, source_filter: SourceFilter, limit: int | None = None, after: PageKey | None = None
    ) -> SourcePage:
        """Summaries of matching sources oldest first, at most `limit`, strictly after `after`."""

    def chunks(
        self, source_filter: SourceFilter, size: int | None = None
    ) -> AsyncGenerator[Sequence[SourceSummary], None]:
        """Every matching source's summary oldest first, in chunks of at most `size` (None: the
        store's choice). An async generator: the store lets go of what it holds for it when it
        ends or is closed."""

    async def remove(
        self, source_id: UUID, expected_version: int | None = None, event: Event | None = None
    ) -> None:
        """Delete the source (if at `expected_version`, when given); the event gets its name."""

    async def count(self) -> int:
        """How many sources are registered."""

    async def revision(self) -> int | None:
        """A number that stays equal while no source changes; None if the store cannot tell."""


class EventRepository(Protocol):
    """The audit trail: appended to, never changed."""

    async def append(self, event: Event) -> None:
        """Record an event that goes with no stored change (a read of secrets)."""

    async def list(
        self, event_filter: EventFilter, limit: int | None = None, after: EventKey | None = None
    ) -> EventPage:
        """Matching events oldest first, at most `limit`, strictly after `after`."""


class SnapshotRepository(Protocol):
    """Where each source's schema history is kept: snapshots numbered 1, 2, ... per source."""

    async def head(self, source_id: UUID) -> SnapshotHead | None:
        """The newest snapshot's sequence and fingerprint; None if the source has no snapshot."""

    async def latest(self, source_id: UUID) -> SchemaSnapshot | None:
        """The newest snapshot of the source; None if it has none."""

    async def append(self, snapshot: SchemaSnapshot, event: Event | None = None) -> bool:
        """Store it only if the source's newest is `sequence - 1` (or none, for 1), atomically.

        The event, if any, is stored with it in the same transaction, and only with it. Say
        whether it was stored; raise `SourceNotFound` if the source does not exist.
        """

    async def newest_first(
        self, source_id: UUID, limit: int, before: int | None = None
    ) -> Sequence[SchemaSnapshot]:
        """At most `limit` of the source's snapshots, newest first, with sequence below `before`."""


class ApiKeyRepository(Protocol):
    """Where API keys are kept."""

    async def add(self, key: ApiKey, event: Event | None = None) -> None:
        """Store a new key (and its event, in the same transaction); raise `DuplicateKeyName`
        if a key that is neither revoked nor superseded holds its name."""

    async def add_if_none(self, key: ApiKey, event: Event | None = None) -> bool:
        """Store the key only if the store holds no key at all, atomically; say whether it did."""

    async def get(self, key_id: str) -> ApiKey:
        """The key with this id; raise `ApiKeyNotFound` if there is none."""

    async def list(self) -> Sequence[ApiKey]:
        """Every key, revoked ones included, oldest first."""

    async def revoke(self, key_id: str, at: datetime, event: Event | None = None) -> ApiKey:
        """Mark the key revoked (idempotent: the event is kept only by the first revocation)."""

    async def rotate(
        self, old_key_id: str, old_expires_at: datetime, new: ApiKey, events: Sequence[Event]
    ) -> None:
        """In one transaction: mark the old key superseded, expiring at `old_expires_at`, store
        the new one (which takes its name) and the events; `KeyNotRotatable` if the old key is
        no longer active and unsuperseded, `ApiKeyNotFound` if there is none."""

    async def touch(self, uses: Mapping[str, datetime]) -> None:
        """Record when each key was last used (never moving a key's `last_used_at` back);
        keys that no longer exist are skipped."""


class TokenVerifier(Protocol):
    """Verifies bearer tokens issued by an identity provider (OIDC)."""

    async def verify(self, token: str) -> VerifiedToken:
        """What a valid token says; raise `AuthenticationFailed(cause)` for any invalid one."""


class Store(Protocol):
    """The registry's store as a whole: its schema version and its health."""

    async def upgrade(self) -> list[int]:
        """Apply pending migrations; return the versions applied now."""

    async def ping(self) -> None:
        """Return if the store answers; raise `StoreUnavailable` if it does not."""

    def usage(self) -> tuple[int, int]:
        """This process's connections to the store: held open, and in use right now."""

    async def release(self) -> None:
        """Once the writes begun on the running event loop have ended, let go of what the store
        holds for that loop (its connections); a later call on the loop takes them again."""


class Connector(Protocol):
    """One type of data source: how its connection looks and how its live schema is read.

    Every method is awaited on the caller's event loop and never blocks it: what would (a host
    name's lookup, a look at the file system, a blocking driver) goes to a thread inside the
    connector.
    """

    source_type: str
    title: str
    origin: str
    """`builtin`, or `plugin` for one an installed distribution brought."""
    package: str | None
    """`name==version` of a plug-in's distribution; None for a built-in."""
    fields: Sequence[ConnectionField]

    async def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        """The normalized connection; raise `InvalidConnection` naming every bad field, or
        `HostNotAllowed` for a well-formed host that the outbound policy refuses."""

    async def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        """The live columns in order; raise `BackendUnavailable(reason)` if the backend can't."""

    async def forget(self, connection: Mapping[str, Any]) -> None:
        """Drop what is kept open for this connection (pooled sessions); its secrets are unread."""

    async def check(self, connection: Mapping[str, Any]) -> None:
        """Return if the schema would answer now; raise `BackendUnavailable(reason)` if not
        (`host_not_allowed`, before any connection, for a host the outbound policy refuses)."""


class ConnectorRegistry(Protocol):
    """The connectors built into this process, by source type."""

    def get(self, source_type: str) -> Connector:
        """The connector for this type; raise `UnknownSourceType` naming the available ones."""

    def types(self) -> Sequence[str]:
        """The registered source types, sorted."""

    def failures(self) -> Sequence[ConnectorLoadFailure]:
        """The plug-ins that were not loaded, each with its error."""


class SecretCipher(Protocol):
    """Encrypts connection secrets at rest."""

    def encrypt(self, plaintext: str) -> str:
        """An opaque ciphertext for the plaintext."""

    def decrypt(self, ciphertext: str) -> str:
        """The plaintext; raise `SecretUnreadable` if this key cannot decrypt it."""


class Clock(Protocol):
    """The current time."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""


class IdGenerator(Protocol):
    """New identifiers for sources."""

    def new(self) -> UUID:
        """A fresh, unique id."""
