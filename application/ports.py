"""The ports: what the use cases need from the world, as structural protocols."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from domain.connections import ConnectionField
from domain.events import Event, EventFilter, EventKey, EventPage
from domain.history import SchemaSnapshot, SnapshotHead
from domain.keys import ApiKey
from domain.sources import Column, PageKey, Source, SourceFilter, SourcePage

T = TypeVar("T")


class Offload(Protocol):
    """Runs a blocking call away from the event loop; awaiting it gives the call's result."""

    def __call__(self, call: Callable[[], T]) -> Awaitable[T]:
        """What `call()` returns or raises, once it has run elsewhere."""


class SourceRepository(Protocol):
    """Where registered sources are kept; each change and its `event` commit together."""

    def add(self, source: Source, event: Event | None = None) -> None:
        """Store a new source; raise `DuplicateSourceName` if its name is taken."""

    def update(self, source: Source, expected_version: int, event: Event | None = None) -> None:
        """Replace the source if it is still at `expected_version`, else `VersionMismatch`."""

    def get(self, source_id: UUID) -> Source:
        """The source with this id; raise `SourceNotFound` if there is none."""

    def list(
        self, source_filter: SourceFilter, limit: int | None = None, after: PageKey | None = None
    ) -> SourcePage:
        """Summaries of matching sources oldest first, at most `limit`, strictly after `after`."""

    def remove(
        self, source_id: UUID, expected_version: int | None = None, event: Event | None = None
    ) -> None:
        """Delete the source (if at `expected_version`, when given); the event gets its name."""

    def count(self) -> int:
        """How many sources are registered."""

    def revision(self) -> int | None:
        """A number that stays equal while no source changes; None if the store cannot tell."""


class SourceLookup(Protocol):
    """Sources by id for code on the event loop: awaiting a lookup never blocks the loop.

    A lookup answers as `SourceRepository.get` of the same store does, and sees every change
    committed before it was made. `close` releases what the lookups hold on the running loop;
    lookups made afterwards (on any loop) still work.
    """

    async def get(self, source_id: UUID) -> Source:
        """The source with this id; raise `SourceNotFound` if there is none."""

    async def close(self) -> None:
        """Release the connections held for the running event loop."""


class SourceWrites(Protocol):
    """Sources added and changed from code on the event loop: awaiting a write never blocks it.

    A write does what the same method of the store's `SourceRepository` does: the change and its
    event commit together, a name already taken raises `DuplicateSourceName`, a version moved on
    `VersionMismatch`. Once awaiting it has begun, a write runs to its end even if the awaiting
    code is cancelled.
    """

    async def add(self, source: Source, event: Event | None = None) -> None:
        """Store a new source; raise `DuplicateSourceName` if its name is taken."""

    async def update(
        self, source: Source, expected_version: int, event: Event | None = None
    ) -> None:
        """Replace the source if it is still at `expected_version`, else `VersionMismatch`."""

    async def close(self) -> None:
        """Return once every write begun on the running event loop has ended."""


class EventRepository(Protocol):
    """The audit trail: appended to, never changed."""

    def append(self, event: Event) -> None:
        """Record an event that goes with no stored change (a read of secrets)."""

    def list(
        self, event_filter: EventFilter, limit: int | None = None, after: EventKey | None = None
    ) -> EventPage:
        """Matching events oldest first, at most `limit`, strictly after `after`."""


class SnapshotRepository(Protocol):
    """Where each source's schema history is kept: snapshots numbered 1, 2, ... per source."""

    def head(self, source_id: UUID) -> SnapshotHead | None:
        """The newest snapshot's sequence and fingerprint; None if the source has no snapshot."""

    def latest(self, source_id: UUID) -> SchemaSnapshot | None:
        """The newest snapshot of the source; None if it has none."""

    def append(self, snapshot: SchemaSnapshot, event: Event | None = None) -> bool:
        """Store it only if the source's newest is `sequence - 1` (or none, for 1), atomically.

        The event, if any, is stored with it in the same transaction, and only with it. Say
        whether it was stored; raise `SourceNotFound` if the source does not exist.
        """

    def newest_first(
        self, source_id: UUID, limit: int, before: int | None = None
    ) -> Sequence[SchemaSnapshot]:
        """At most `limit` of the source's snapshots, newest first, with sequence below `before`."""


class SnapshotHeads(Protocol):
    """The heads of schema histories for code on the event loop: awaiting one never blocks it."""

    async def head(self, source_id: UUID) -> SnapshotHead | None:
        """As `SnapshotRepository.head` answers, for the same store."""


class ApiKeyRepository(Protocol):
    """Where API keys are kept."""

    def add(self, key: ApiKey, event: Event | None = None) -> None:
        """Store a new key (and its event, in the same transaction)."""

    def add_if_none(self, key: ApiKey, event: Event | None = None) -> bool:
        """Store the key only if the store holds no key at all, atomically; say whether it did."""

    def get(self, key_id: str) -> ApiKey:
        """The key with this id; raise `ApiKeyNotFound` if there is none."""

    def list(self) -> Sequence[ApiKey]:
        """Every key, revoked ones included, oldest first."""

    def revoke(self, key_id: str, at: datetime, event: Event | None = None) -> ApiKey:
        """Mark the key revoked (idempotent: the event is kept only by the first revocation)."""


class Store(Protocol):
    """The registry's store as a whole: its schema version and its health."""

    def upgrade(self) -> list[int]:
        """Apply pending migrations; return the versions applied now."""

    def ping(self) -> None:
        """Return if the store answers; raise `StoreUnavailable` if it does not."""

    def usage(self) -> tuple[int, int]:
        """This process's connections to the store: held open, and in use right now."""


class Connector(Protocol):
    """One type of data source: how its connection looks and how its live schema is read."""

    source_type: str
    fields: Sequence[ConnectionField]

    def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        """The normalized connection; raise `InvalidConnection` naming every bad field, or
        `HostNotAllowed` for a well-formed host that the outbound policy refuses."""

    async def validate_async(
        self, connection: Mapping[str, Any], offload: Offload
    ) -> dict[str, Any]:
        """`validate` for code on the event loop: awaiting it never blocks the loop. A check
        that could wait (a host name's lookup, a look at the file system) goes through
        `offload`."""

    def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        """The live columns in order; raise `BackendUnavailable(reason)` if the backend can't."""

    async def inspect_async(
        self, connection: Mapping[str, Any], offload: Offload
    ) -> Sequence[Column]:
        """`inspect` for code on the event loop: awaiting it never blocks the loop. What a
        connector does that would block goes through `offload`."""

    def forget(self, connection: Mapping[str, Any]) -> None:
        """Drop what is kept open for this connection (pooled sessions); its secrets are unread."""

    def check(self, connection: Mapping[str, Any]) -> None:
        """Return if the schema would answer now; raise `BackendUnavailable(reason)` if not
        (`host_not_allowed`, before any connection, for a host the outbound policy refuses)."""


class ConnectorRegistry(Protocol):
    """The connectors built into this process, by source type."""

    def get(self, source_type: str) -> Connector:
        """The connector for this type; raise `UnknownSourceType` naming the available ones."""

    def types(self) -> Sequence[str]:
        """The registered source types, sorted."""


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
