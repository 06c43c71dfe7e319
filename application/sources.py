"""Use cases on sources: register, list, get, inspect the live schema, delete."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs

from application.ports import (
    Clock,
    ConnectorRegistry,
    IdGenerator,
    SecretCipher,
    SnapshotRepository,
    SourceRepository,
)
from domain.errors import FieldError, InvalidInput, PermissionDenied, UnknownSourceType
from domain.history import (
    HistoryEntry,
    HistoryPage,
    SchemaSnapshot,
    SnapshotHead,
    diff,
    fingerprint,
    history_page,
)
from domain.keys import Principal, Scope
from domain.sources import (
    MASK,
    Column,
    PageKey,
    Source,
    SourceFilter,
    SourceName,
    SourcePage,
    SourceSchema,
    description_errors,
    name_errors,
    tags_errors,
)

LIST_LIMIT_MAX = 1000
HISTORY_LIMIT_DEFAULT = 100


def require(actor: Principal, scope: Scope) -> None:
    """Raise `PermissionDenied` unless the actor holds the scope."""
    if not actor.can(scope):
        raise PermissionDenied(scope)


def _secret_names(connectors: ConnectorRegistry, source_type: str) -> list[str]:
    return [f.name for f in connectors.get(source_type).fields if f.secret]


def _map_secrets(source: Source, names: list[str], how: Callable[[str], str]) -> Source:
    connection = dict(source.connection)
    for name in names:
        if isinstance(connection.get(name), str):
            connection[name] = how(connection[name])
    return source.with_connection(connection)


def _shown(
    source: Source, names: list[str], actor: Principal, decrypt: Callable[[str], str]
) -> Source:
    """The source as this actor may see it: secrets decrypted, or masked without the scope."""
    if actor.can(Scope.SECRETS):
        return _map_secrets(source, names, decrypt)
    return _map_secrets(source, names, lambda _: MASK)


@attrs.frozen
class RegisterSourceCommand:
    """Register a new source (fields as the client sent them)."""

    actor: Principal
    name: Any
    source_type: Any
    connection: Any
    description: Any = ""
    tags: Any = ()


@attrs.frozen
class RegisterSource:
    """Validate a new source, encrypt its secrets and store it."""

    required_scope = Scope.WRITE

    _sources: SourceRepository
    _connectors: ConnectorRegistry
    _cipher: SecretCipher
    _clock: Clock
    _ids: IdGenerator

    def __call__(self, command: RegisterSourceCommand) -> Source:
        require(command.actor, self.required_scope)
        # Optional fields given as null mean "not given".
        description = "" if command.description is None else command.description
        tags = () if command.tags is None else command.tags
        errors = [
            *name_errors(command.name),
            *description_errors(description),
            *tags_errors(tags),
        ]
        if not isinstance(command.source_type, str):
            errors.append(FieldError("source_type", "must be a string"))
        if errors:
            raise InvalidInput(errors)
        connector = self._connectors.get(command.source_type)
        connection = connector.validate(command.connection)
        source = Source(
            id=self._ids.new(),
            name=SourceName(command.name),
            source_type=command.source_type,
            connection=connection,
            description=description,
            tags=tags,
            registered_by=command.actor.identity,
            registered_at=self._clock.now(),
        )
        names = _secret_names(self._connectors, source.source_type)
        self._sources.add(_map_secrets(source, names, self._cipher.encrypt))
        # The source in hand is still in clear: "decrypting" it is the identity.
        return _shown(source, names, command.actor, str)


@attrs.frozen
class ListSourcesQuery:
    """List sources oldest first, filtered, optionally one page at a time."""

    actor: Principal
    filter: SourceFilter = attrs.field(factory=SourceFilter)
    limit: int | None = None
    after: PageKey | None = None


@attrs.frozen
class ListSources:
    """The registry's sources, as summaries the caller may see."""

    required_scope = Scope.READ

    _sources: SourceRepository

    def __call__(self, query: ListSourcesQuery) -> SourcePage:
        require(query.actor, self.required_scope)
        if query.limit is not None and not 1 <= query.limit <= LIST_LIMIT_MAX:
            raise InvalidInput.single("limit", f"must be between 1 and {LIST_LIMIT_MAX}")
        return self._sources.list(query.filter, query.limit, query.after)


@attrs.frozen
class GetSourceQuery:
    """Fetch one source by id."""

    actor: Principal
    source_id: UUID


@attrs.frozen
class GetSource:
    """One source with its connection, secrets in clear only for the `sources:secrets` scope."""

    required_scope = Scope.READ

    _sources: SourceRepository
    _connectors: ConnectorRegistry
    _cipher: SecretCipher

    def __call__(self, query: GetSourceQuery) -> Source:
        require(query.actor, self.required_scope)
        source = self._sources.get(query.source_id)
        names = _secret_names(self._connectors, source.source_type)
        return _shown(source, names, query.actor, self._cipher.decrypt)


@attrs.frozen
class InspectSchemaQuery:
    """Read the live column schema of one source."""

    actor: Principal
    source_id: UUID


@attrs.frozen
class InspectSchema:
    """Ask the source's backend for its columns, now, and keep them if they changed."""

    required_scope = Scope.READ

    _sources: SourceRepository
    _connectors: ConnectorRegistry
    _cipher: SecretCipher
    _clock: Clock
    _history: SnapshotRepository

    def __call__(self, query: InspectSchemaQuery) -> SourceSchema:
        require(query.actor, self.required_scope)
        source = self._sources.get(query.source_id)
        # Read before the backend is asked: a snapshot is stored only on top of this one, so an
        # inspection that saw older columns than a concurrent one cannot bury its newer result.
        head = self._history.head(source.id)
        names = _secret_names(self._connectors, source.source_type)
        connection: Mapping[str, Any] = _map_secrets(source, names, self._cipher.decrypt).connection
        columns = tuple(self._connectors.get(source.source_type).inspect(connection))
        printed = fingerprint(columns)
        inspected_at = self._clock.now()
        recorded = None
        if head is None or head.fingerprint != printed:
            recorded = self._record(source.id, head, columns, printed, inspected_at)
        return SourceSchema(
            source_id=source.id,
            source_name=source.name.value,
            columns=columns,
            inspected_at=inspected_at,
            fingerprint=printed,
            recorded=recorded,
        )

    def _record(
        self,
        source_id: UUID,
        head: SnapshotHead | None,
        columns: tuple[Column, ...],
        printed: str,
        observed_at: datetime,
    ) -> HistoryEntry | None:
        """The entry stored for these columns; None if another inspection stored one first."""
        previous = self._history.latest(source_id) if head is not None else None
        if head is not None and (previous is None or previous.sequence != head.sequence):
            return None
        snapshot = SchemaSnapshot(
            source_id=source_id,
            sequence=head.sequence + 1 if head is not None else 1,
            fingerprint=printed,
            columns=columns,
            observed_at=observed_at,
        )
        if not self._history.append(snapshot):
            return None
        return HistoryEntry(snapshot, diff(previous.columns, columns) if previous else ())


@attrs.frozen
class SchemaHistoryQuery:
    """Read one source's schema history, newest first, one page at a time."""

    actor: Principal
    source_id: UUID
    limit: int = HISTORY_LIMIT_DEFAULT
    before: int | None = None


@attrs.frozen
class GetSchemaHistory:
    """A source's snapshots newest first, each with its changes against the one before."""

    required_scope = Scope.READ

    _sources: SourceRepository
    _history: SnapshotRepository

    def __call__(self, query: SchemaHistoryQuery) -> HistoryPage:
        require(query.actor, self.required_scope)
        if not 1 <= query.limit <= LIST_LIMIT_MAX:
            raise InvalidInput.single("limit", f"must be between 1 and {LIST_LIMIT_MAX}")
        self._sources.get(query.source_id)
        # One snapshot more than the page: it tells whether there is a next page, and it is
        # what the page's oldest snapshot is compared with.
        snapshots = self._history.newest_first(query.source_id, query.limit + 1, query.before)
        return history_page(snapshots, query.limit)


@attrs.frozen
class DeleteSourceCommand:
    """Remove one source from the registry."""

    actor: Principal
    source_id: UUID


@attrs.frozen
class DeleteSource:
    """Forget a source, and its connector what it keeps open for it; the data is not touched."""

    required_scope = Scope.WRITE

    _sources: SourceRepository
    _connectors: ConnectorRegistry

    def __call__(self, command: DeleteSourceCommand) -> None:
        require(command.actor, self.required_scope)
        source = self._sources.get(command.source_id)
        self._sources.remove(command.source_id)
        forget_connection(self._connectors, source)


def forget_connection(connectors: ConnectorRegistry, source: Source) -> None:
    """Tell the source's connector to drop what it keeps open for this source's connection."""
    try:
        connector = connectors.get(source.source_type)
    except UnknownSourceType:
        return  # a type this build no longer has keeps nothing open
    connector.forget(source.connection)
