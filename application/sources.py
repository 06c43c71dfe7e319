"""Use cases on sources: register, list, get, update, test, inspect the live schema, delete."""

from __future__ import annotations

import abc
import asyncio
import enum
import functools
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeAlias, TypeVar
from uuid import UUID

import attrs

from application.ports import (
    Clock,
    Connector,
    ConnectorRegistry,
    EventRepository,
    IdGenerator,
    SecretCipher,
    SourceRepository,
)
from domain.connections import ConnectionCheck, secrets_left_behind
from domain.errors import (
    BackendUnavailable,
    FieldError,
    HostNotAllowed,
    InvalidConnection,
    InvalidInput,
    PermissionDenied,
    StoreUnavailable,
    UnknownSourceType,
    VerificationFailed,
    VersionMismatch,
)
from domain.events import Action, Event
from domain.keys import Principal, Scope
from domain.sources import (
    MASK,
    IfMatch,
    PageKey,
    Source,
    SourceFilter,
    SourceName,
    SourcePage,
    SourceStamp,
    SourceSummary,
    description_errors,
    name_errors,
    normalized,
    tags_errors,
)

LIST_LIMIT_MAX = 1000
# Each tag filter is one more condition in the store's query: SQLite's expression depth (1000)
# would turn a long list into a store outage.
TAG_FILTERS_MAX = 50
# An update without If-Match that lost to another change waits a random while under a cap that
# doubles from the first to the last figure (seconds), then merges again onto the newer version.
RETRY_PAUSE_FIRST = 0.001
RETRY_PAUSE_MAX = 0.05

JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
"""A value as JSON has it: what a connection field holds until its connector has checked it."""
Connection: TypeAlias = Mapping[str, JsonValue]
"""A connection object as given, before its connector checks and completes it."""


def require(actor: Principal, scope: Scope) -> None:
    """Raise `PermissionDenied` unless the actor holds the scope."""
    if not actor.can(scope):
        raise PermissionDenied(scope)


UseCase = TypeVar("UseCase", bound="Guarded")


class Guarded:
    """A use case that an actor may run only with its `required_scope` (see `guarded`)."""

    required_scope: ClassVar[Scope]


def guarded(scope: Scope) -> Callable[[type[UseCase]], type[UseCase]]:
    """The use case's `__call__`, made to refuse (`PermissionDenied`) an actor without `scope`
    before it does anything else: one check for every use case run for a request's `actor`
    (its query or command names it). The entrypoints read `required_scope` to check it sooner."""

    def guard(cls: type[UseCase]) -> type[UseCase]:
        call = cls.__call__

        @functools.wraps(call)
        async def checked(self: UseCase, request: Any) -> Any:
            require(request.actor, scope)
            return await call(self, request)

        cls.__call__ = checked  # type: ignore[method-assign]
        cls.required_scope = scope
        return cls

    return guard


def secret_names(connectors: ConnectorRegistry, source_type: str) -> list[str]:
    return [f.name for f in connectors.get(source_type).fields if f.secret]


def map_secrets(source: Source, names: list[str], how: Callable[[str], str]) -> Source:
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
        return map_secrets(source, names, decrypt)
    return map_secrets(source, names, lambda _: MASK)


def _as_read(
    source: Source,
    names: list[str],
    actor: Principal,
    decrypt: Callable[[str], str],
    clock: Clock,
    ids: IdGenerator,
) -> tuple[Source, Event | None]:
    """The source as this actor reads it (`_shown`), and the `source.secrets_read` event that
    showing a secret in clear records before the answer is given (None if none is shown)."""
    # In one pass (it is on the path of every GET): the shown connection, and which secrets
    # it shows in clear, as `_shown` and then a look at each of its secrets would make them.
    clear = actor.can(Scope.SECRETS)
    connection = dict(source.connection)
    for name in names:
        value = connection.get(name)
        if isinstance(value, str):
            connection[name] = decrypt(value) if clear else MASK
    shown = source.with_connection(connection)
    if not clear:
        return shown, None
    revealed = [n for n in names if connection.get(n)]
    if not revealed:
        return shown, None
    return shown, Event(
        id=ids.new(),
        at=clock.now(),
        actor=actor.identity,
        action=Action.SOURCE_SECRETS_READ,
        source_id=source.id,
        source_name=source.name.value,
        changed=tuple(f"connection.{n}" for n in revealed),
    )


async def _verify(connector: Connector, connection: Mapping[str, Any]) -> None:
    """Raise `VerificationFailed` unless the connection test passes."""
    try:
        await connector.check(connection)
    except BackendUnavailable as exc:
        raise VerificationFailed(exc.reason, exc.detail) from None


def check_limit(limit: int | None) -> None:
    """Raise `InvalidInput` on `limit` unless it is None or a page size the API serves."""
    if limit is not None and not 1 <= limit <= LIST_LIMIT_MAX:
        raise InvalidInput.single("limit", f"must be between 1 and {LIST_LIMIT_MAX}")


@attrs.frozen
class SourceUseCase(Guarded):
    """A use case on saved sources: their store and their connectors."""

    _sources: SourceRepository
    _connectors: ConnectorRegistry


@attrs.frozen
class SecretsUseCase(SourceUseCase):
    """A use case on saved sources that seals or opens their secret connection fields."""

    _cipher: SecretCipher

    def _in_clear(self, source: Source) -> tuple[list[str], Source]:
        """The source's secret fields, and the source with them decrypted."""
        names = secret_names(self._connectors, source.source_type)
        return names, map_secrets(source, names, self._cipher.decrypt)


@attrs.frozen
class RegisterSourceCommand:
    """Register a new source; `verify`: test its connection first.

    The fields have their types (each entrypoint decodes what a client sent into them);
    whether their values make a valid source is this use case's to say.
    """

    actor: Principal
    name: str
    source_type: str
    connection: Connection
    description: str = ""
    tags: tuple[str, ...] = ()
    verify: bool = False


@guarded(Scope.WRITE)
@attrs.frozen
class RegisterSource(SecretsUseCase):
    """Validate a new source (and test its connection, if asked), encrypt its secrets and
    store it."""

    _clock: Clock
    _ids: IdGenerator

    async def __call__(self, command: RegisterSourceCommand) -> Source:
        connector = self._connector(command)
        connection = await connector.validate(command.connection)
        if command.verify:
            await _verify(connector, connection)
        shown, stored, event = self._new(command, connection)
        await self._sources.add(stored, event)
        return shown

    def _connector(self, command: RegisterSourceCommand) -> Connector:
        """The connector of the command's type, once the plain fields pass."""
        _check_fields(command.name, command.description, command.tags)
        return self._connectors.get(command.source_type)

    def _new(
        self, command: RegisterSourceCommand, connection: dict[str, Any]
    ) -> tuple[Source, Source, Event]:
        """The new source as the actor may see it, the same as stored (its secrets encrypted),
        and its event."""
        source = Source(
            id=self._ids.new(),
            name=SourceName(command.name),
            source_type=command.source_type,
            connection=connection,
            description=command.description,
            tags=command.tags,
            registered_by=command.actor.identity,
            registered_at=self._clock.now(),
        )
        event = Event(
            id=self._ids.new(),
            at=source.registered_at,
            actor=command.actor.identity,
            action=Action.SOURCE_REGISTERED,
            source_id=source.id,
            source_name=source.name.value,
        )
        names = secret_names(self._connectors, source.source_type)
        stored = map_secrets(source, names, self._cipher.encrypt)
        # The source in hand is still in clear: "decrypting" it is the identity.
        return _shown(source, names, command.actor, str), stored, event


Filter = TypeVar("Filter")
Key = TypeVar("Key")


@attrs.frozen
class PageQuery(Generic[Filter, Key]):
    """A listing, oldest first: what `filter` lets through (None: everything), `limit` at most
    (None: all), after the page key `after` (None: from the first)."""

    actor: Principal
    filter: Filter | None = None
    limit: int | None = None
    after: Key | None = None


Page = TypeVar("Page")


class PagedListing(Guarded, abc.ABC, Generic[Filter, Key, Page]):
    """A listing one page at a time: a page size the API serves (`check_limit`), then the
    listing's own `_page` for the query."""

    async def __call__(self, query: PageQuery[Filter, Key]) -> Page:
        check_limit(query.limit)
        return await self._page(query)

    @abc.abstractmethod
    async def _page(self, query: PageQuery[Filter, Key]) -> Page:
        """The page: the store's, for the query's filter (once admitted), size and key."""


FilterIn = TypeVar("FilterIn", contravariant=True)
KeyIn = TypeVar("KeyIn", contravariant=True)
PageOut = TypeVar("PageOut", covariant=True)


class PageStore(Protocol[FilterIn, KeyIn, PageOut]):
    """A store that lists its records one page at a time, in its own order."""

    async def list(
        self, page_filter: FilterIn | None, limit: int | None, after: KeyIn | None, /
    ) -> PageOut:
        """What the filter lets through (None: all), at most `limit`, strictly after `after`."""


@attrs.frozen
class StoreListing(PagedListing[Filter, Key, Page]):
    """A listing whose every query the store answers as it is (any filter, no default)."""

    _store: PageStore[Filter, Key, Page]

    async def _page(self, query: PageQuery[Filter, Key]) -> Page:
        return await self._store.list(query.filter, query.limit, query.after)


CHILD_LIMIT_DEFAULT = 100
"""The page a listing of one record's children answers when no `limit` is asked."""


@attrs.frozen
class ChildPageQuery(Generic[Filter, Key]):
    """A page of one record's children (the record: `parent_id`), newest first: what `filter`
    lets through (None: all), `limit` at most, strictly before the page key `before` (None:
    from the newest)."""

    actor: Principal
    parent_id: UUID
    filter: Filter | None = None
    limit: int = CHILD_LIMIT_DEFAULT
    before: Key | None = None


class ParentStore(Protocol):
    """The store of the records whose children are listed."""

    async def get(self, record_id: UUID, /) -> object:
        """The record; raise the store's not-found error if there is none."""


@attrs.frozen
class ChildListing(Guarded, abc.ABC, Generic[Filter, Key, Page]):
    """A page of one record's children: a page size the API serves (`check_limit`), the record
    (an unknown one raises its store's not-found error, not an empty page), then the listing's
    own `_page`."""

    _parents: ParentStore

    async def __call__(self, query: ChildPageQuery[Filter, Key]) -> Page:
        check_limit(query.limit)
        await self._parents.get(query.parent_id)
        return await self._page(query)

    @abc.abstractmethod
    async def _page(self, query: ChildPageQuery[Filter, Key]) -> Page:
        """The page, the record being known to exist."""


class ChildStore(Protocol[FilterIn, KeyIn, PageOut]):
    """A store that lists one record's children one page at a time, newest first."""

    async def list(
        self, parent_id: UUID, page_filter: FilterIn | None, limit: int, before: KeyIn | None, /
    ) -> PageOut:
        """What the filter lets through (None: all), at most `limit`, strictly before `before`."""


@attrs.frozen
class ChildStoreListing(ChildListing[Filter, Key, Page]):
    """A listing of children whose every query their store answers as it is."""

    _children: ChildStore[Filter, Key, Page]

    async def _page(self, query: ChildPageQuery[Filter, Key]) -> Page:
        return await self._children.list(query.parent_id, query.filter, query.limit, query.before)


ListSourcesQuery: TypeAlias = PageQuery[SourceFilter, PageKey]


@guarded(Scope.READ)
@attrs.frozen
class ListSources(PagedListing[SourceFilter, PageKey, SourcePage]):
    """The registry's sources, as summaries the caller may see."""

    _sources: SourceRepository

    async def revision(self, actor: Principal) -> int | None:
        """The store's revision of the sources (None if it cannot tell): equal, same listing."""
        require(actor, self.required_scope)
        return await self._sources.revision()

    async def _page(self, query: ListSourcesQuery) -> SourcePage:
        source_filter = SourceFilter() if query.filter is None else query.filter
        if len(source_filter.tags) > TAG_FILTERS_MAX:
            raise InvalidInput.single("tag", f"must be given at most {TAG_FILTERS_MAX} times")
        return await self._sources.list(source_filter, query.limit, query.after)


@guarded(Scope.READ)
@attrs.frozen
class StreamSources(Guarded):
    """A listing with no limit, every matching source's summary in chunks as the store reads
    them: a million sources are never all in memory at once."""

    _sources: SourceRepository

    async def __call__(
        self, query: ListSourcesQuery
    ) -> AsyncGenerator[Sequence[SourceSummary], None]:
        if query.limit is not None or query.after is not None:
            raise InvalidInput.single("limit", "a streamed listing is the whole listing")
        source_filter = SourceFilter() if query.filter is None else query.filter
        if len(source_filter.tags) > TAG_FILTERS_MAX:
            raise InvalidInput.single("tag", f"must be given at most {TAG_FILTERS_MAX} times")
        return self._sources.chunks(source_filter)


@attrs.frozen
class GetSourceQuery:
    """Fetch one source by id."""

    actor: Principal
    source_id: UUID


@guarded(Scope.READ)
@attrs.frozen
class GetSource(SecretsUseCase):
    """One source with its connection, secrets in clear only for the `sources:secrets` scope.

    Showing a secret in clear is recorded (`source.secrets_read`) before the answer is given.
    """

    _events: EventRepository
    _clock: Clock
    _ids: IdGenerator

    async def __call__(self, query: GetSourceQuery) -> Source:
        source = await self._sources.get(query.source_id)
        names = secret_names(self._connectors, source.source_type)
        shown, read = _as_read(
            source, names, query.actor, self._cipher.decrypt, self._clock, self._ids
        )
        if read is not None:
            await self._events.append(read)
        return shown


class Absent(enum.Enum):
    """The mark of a field a patch leaves out (which keeps its value; null does not)."""

    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent.ABSENT


@attrs.frozen
class SourcePatch:
    """A JSON Merge Patch (RFC 7396) of a source's changeable fields.

    A field left `ABSENT` keeps its value; `description` and `tags` given as None return to
    their defaults; in `connection`, a field given as None returns to its default (or goes),
    one left out keeps its value, and a secret sent back as `********` keeps its stored value.
    """

    name: str | Absent = ABSENT
    description: str | Absent | None = ABSENT
    tags: tuple[str, ...] | Absent | None = ABSENT
    connection: Connection | Absent = ABSENT


@attrs.frozen
class UpdateSourceCommand:
    """Apply a merge patch to a source, optionally only at given versions."""

    actor: Principal
    source_id: UUID
    patch: SourcePatch
    if_match: IfMatch | None = None
    verify: bool = False


def _draft_connection(
    clear: Source, patch: SourcePatch, secret_names: list[str]
) -> dict[str, Any] | None:
    """The source's connection with the patch's merged in (a masked secret sent back keeps its
    value), before its connector checks it; None if the patch leaves the connection alone."""
    if patch.connection is ABSENT:
        return None
    draft = dict(clear.connection)
    for field, value in patch.connection.items():
        if value is None:
            draft.pop(field, None)
        elif not (field in secret_names and value == MASK):
            draft[field] = value
    return draft


async def _validated(
    connector: Connector, draft: dict[str, Any]
) -> tuple[dict[str, Any], list[FieldError]]:
    """The connection as the connector validates it, and no errors; or the draft, and its
    errors."""
    try:
        return await connector.validate(draft), []
    except InvalidConnection as exc:
        return draft, list(exc.errors)


@attrs.frozen
class Retry:
    """How an update without a version to match tries again after losing to another change:
    it never gives up on a race, only on the store, `timeout` seconds after it began
    (`StoreUnavailable`); between tries it waits a random while (full jitter) under a cap that
    doubles, so that writers racing for one source spread out rather than collide again."""

    timeout: float = 5.0
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def deadline(self) -> float:
        """When an update beginning now gives up."""
        return self.monotonic() + self.timeout

    def pause(self, lost: int, deadline: float) -> float:
        """Seconds to wait after the `lost`-th lost try (1, 2, ...); raise `StoreUnavailable`
        once the deadline has passed."""
        left = deadline - self.monotonic()
        if left <= 0:
            raise StoreUnavailable(f"a change kept losing to others for {self.timeout:g} s")
        cap = min(RETRY_PAUSE_MAX, RETRY_PAUSE_FIRST * 2 ** min(lost - 1, 16))
        return min(left, random.uniform(0, cap))


@guarded(Scope.WRITE)
@attrs.frozen
class UpdateSource(SecretsUseCase):
    """Merge a patch into a source, validate the result as a registration, store it if it differs.

    Secret connection fields that the patch leaves out or sends back masked keep their stored
    value. The store compares and sets the version, so of two changes made from the same version
    only one is stored; without `If-Match` (or with `*`) the loser merges again onto the newer
    version, as `retry` says, until it applies or the store is deemed unavailable.
    """

    _events: EventRepository
    _clock: Clock
    _ids: IdGenerator
    _retry: Retry = Retry()

    async def __call__(self, command: UpdateSourceCommand) -> Source | SourceStamp:
        deadline, lost = self._retry.deadline(), 0
        while True:
            stored = _admitted(command.if_match, await self._sources.get(command.source_id))
            names, clear = self._in_clear(stored)
            connector = self._connectors.get(stored.source_type)
            draft = _draft_connection(clear, command.patch, names)
            checked = None if draft is None else await _validated(connector, draft)
            merged, changed = self._merge(clear, command, connector, checked)
            if command.verify:
                await _verify(connector, merged.connection)
            if not changed:
                return await self._recorded(self._answer(command.actor, clear, names))
            merged, sealed, event = self._changed(command, stored, merged, changed, names)
            try:
                await self._sources.update(sealed, stored.version, event)
            except VersionMismatch as loss:
                lost += 1
                await self._retry.sleep(self._pause(command, loss, lost, deadline))
                continue
            # The old connection is forgotten before the change is answered.
            if any(path.startswith("connection.") for path in changed):
                await forget_connection(self._connectors, stored)
            return await self._recorded(self._answer(command.actor, merged, names))

    def _pause(
        self, command: UpdateSourceCommand, loss: VersionMismatch, lost: int, deadline: float
    ) -> float:
        """Seconds to wait before merging again onto the newer version, once the `lost`-th try
        lost to another change (`loss`); raise the loss if the command is pinned to versions,
        or `StoreUnavailable` past the deadline."""
        # `*` asks only that the source exist, so it may merge again like no condition at all.
        if command.if_match is not None and command.if_match.versions is not None:
            raise loss
        return self._retry.pause(lost, deadline)

    def _changed(
        self,
        command: UpdateSourceCommand,
        stored: Source,
        merged: Source,
        changed: tuple[str, ...],
        names: list[str],
    ) -> tuple[Source, Source, Event]:
        """The changed source in clear, the same as stored (its secrets sealed), its event."""
        now = self._clock.now()
        merged = attrs.evolve(
            merged, version=stored.version + 1, updated_at=now, updated_by=command.actor.identity
        )
        event = Event(
            id=self._ids.new(),
            at=now,
            actor=command.actor.identity,
            action=Action.SOURCE_UPDATED,
            source_id=stored.id,
            source_name=merged.name.value,
            changed=changed,
        )
        return merged, self._sealed(merged, stored, names, changed), event

    def _answer(
        self, actor: Principal, clear: Source, names: list[str]
    ) -> tuple[Source | SourceStamp, Event | None]:
        """The source in clear as a read by this actor would show it, and the event that read
        records (`_as_read`); for an actor that may not read, only its version."""
        if not actor.can(Scope.READ):
            return SourceStamp.of(clear), None
        return _as_read(clear, names, actor, str, self._clock, self._ids)

    async def _recorded(
        self, answered: tuple[Source | SourceStamp, Event | None]
    ) -> Source | SourceStamp:
        """The answer, once the read it shows (if any) is recorded."""
        answer, read = answered
        if read is not None:
            await self._events.append(read)
        return answer

    @staticmethod
    def _merge(
        clear: Source,
        command: UpdateSourceCommand,
        connector: Connector,
        checked: tuple[dict[str, Any], list[FieldError]] | None,
    ) -> tuple[Source, tuple[str, ...]]:
        """The source with the command's patch merged and validated (`checked`: the patched
        connection as its connector validated it, and its errors; None if the patch leaves it),
        and the paths that changed. A stored secret kept unsent by a patch that points the
        connection elsewhere is an error, unless the actor may send secrets."""
        patch = command.patch
        errors: list[FieldError] = []
        name = clear.name.value
        if patch.name is not ABSENT:
            name = patch.name
            errors += name_errors(name)
        description = clear.description
        if patch.description is not ABSENT:
            description = "" if patch.description is None else patch.description
            errors += description_errors(description)
        tags = clear.tags
        if patch.tags is not ABSENT:
            tags = () if patch.tags is None else patch.tags
            errors += tags_errors(tags)
        connection: Mapping[str, Any] = clear.connection
        if checked is not None and patch.connection is not ABSENT:
            connection, connection_errors = checked
            errors += connection_errors
            if not command.actor.may_send_secrets():
                sent = [f for f, v in patch.connection.items() if v is not None and v != MASK]
                errors += secrets_left_behind(connector.fields, clear.connection, connection, sent)
        if errors:
            raise InvalidInput(errors)
        # Names and tags are kept in NFC: one spelling in another form is no change.
        changed = [
            field
            for field, before, after in (
                ("name", clear.name.value, normalized(name)),
                ("description", clear.description, description),
                ("tags", clear.tags, tuple(normalized(t) for t in tags)),
            )
            if before != after
        ]
        changed += sorted(
            f"connection.{field}"
            for field in set(clear.connection) | set(connection)
            if clear.connection.get(field) != connection.get(field)
        )
        merged = attrs.evolve(
            clear, name=SourceName(name), description=description, tags=tags
        ).with_connection(connection)
        return merged, tuple(changed)

    def _sealed(
        self, merged: Source, stored: Source, names: list[str], changed: tuple[str, ...]
    ) -> Source:
        """The merged source as stored: unchanged secrets keep their ciphertext, new ones sealed."""
        connection = dict(merged.connection)
        for name in names:
            if isinstance(connection.get(name), str):
                kept = f"connection.{name}" not in changed
                connection[name] = (
                    stored.connection[name] if kept else self._cipher.encrypt(connection[name])
                )
        return merged.with_connection(connection)


@attrs.frozen
class CheckSourceConnectionQuery:
    """Test the connection of a saved source."""

    actor: Principal
    source_id: UUID


async def _check(
    connector: Connector, connection: Mapping[str, Any], clock: Clock
) -> ConnectionCheck:
    started = clock.now()
    try:
        await connector.check(connection)
    except BackendUnavailable as exc:
        return _finished(clock, started, exc.reason, exc.detail)
    return _finished(clock, started, None, "The schema would answer now.")


def _finished(clock: Clock, started: datetime, reason: str | None, detail: str) -> ConnectionCheck:
    """A connection test's answer, timed from `started` to now."""
    finished = clock.now()
    elapsed = (finished - started).total_seconds() * 1000
    return ConnectionCheck(reason is None, reason, detail, round(elapsed, 3), finished)


def _check_fields(name: str | None, description: str | None, tags: tuple[str, ...] | None) -> None:
    """Raise `InvalidInput` naming every field of a would-be source that breaks its rule, but
    its connection (None: not given)."""
    errors: list[FieldError] = []
    if name is not None:
        errors += name_errors(name)
    if description is not None:
        errors += description_errors(description)
    if tags is not None:
        errors += tags_errors(tags)
    if errors:
        raise InvalidInput(errors)


@guarded(Scope.READ)
@attrs.frozen
class CheckSourceConnection(SecretsUseCase):
    """Whether a saved source's schema would answer now (never raises for a failing backend)."""

    _clock: Clock

    async def __call__(self, query: CheckSourceConnectionQuery) -> ConnectionCheck:
        source = await self._sources.get(query.source_id)
        connection = self._in_clear(source)[1].connection
        return await _check(self._connectors.get(source.source_type), connection, self._clock)


@attrs.frozen
class CheckNewConnectionCommand:
    """Test a would-be source before registering it (None: not given); nothing is stored."""

    actor: Principal
    source_type: str
    connection: Connection
    name: str | None = None
    description: str | None = None
    tags: tuple[str, ...] | None = None


@guarded(Scope.WRITE)
@attrs.frozen
class CheckNewConnection(Guarded):
    """Validate a would-be source as a registration would, then test its connection."""

    _connectors: ConnectorRegistry
    _clock: Clock

    async def __call__(self, command: CheckNewConnectionCommand) -> ConnectionCheck:
        _check_fields(command.name, command.description, command.tags)
        connector = self._connectors.get(command.source_type)
        connection: Mapping[str, Any]
        try:
            connection = await connector.validate(command.connection)
        except HostNotAllowed:
            # Well formed but out of reach: tested all the same, as a saved source at that host
            # would be. The connector refuses the host again, before any connection, and the
            # test fails with its reason, counted and timed as every test is.
            connection = command.connection
        return await _check(connector, connection, self._clock)


@attrs.frozen
class DeleteSourceCommand:
    """Remove one source from the registry, optionally only at given versions."""

    actor: Principal
    source_id: UUID
    if_match: IfMatch | None = None


@guarded(Scope.WRITE)
@attrs.frozen
class DeleteSource(SourceUseCase):
    """Forget a source, and its connector what it keeps open for it; the data is not touched.

    Its events stay.
    """

    _clock: Clock
    _ids: IdGenerator

    async def __call__(self, command: DeleteSourceCommand) -> None:
        stored = _admitted(command.if_match, await self._sources.get(command.source_id))
        # Pinned to versions, the store compares and sets it too; `*` asks only that it exist.
        pinned = command.if_match is not None and command.if_match.versions is not None
        expected = stored.version if pinned else None
        event = Event(
            id=self._ids.new(),
            at=self._clock.now(),
            actor=command.actor.identity,
            action=Action.SOURCE_DELETED,
            source_id=command.source_id,
        )
        # The store names the source in the event: the name it had when it went.
        await self._sources.remove(command.source_id, expected, event)
        await forget_connection(self._connectors, stored)


def _admitted(if_match: IfMatch | None, stored: Source) -> Source:
    """The stored source, if the condition (None: there is none) admits its version; else
    `VersionMismatch`."""
    if if_match is not None and not if_match.admits(stored.version):
        raise VersionMismatch(stored.id, stored.version)
    return stored


async def forget_connection(connectors: ConnectorRegistry, source: Source) -> None:
    """Tell the source's connector to drop what it keeps open for this source's connection."""
    try:
        connector = connectors.get(source.source_type)
    except UnknownSourceType:
        return  # a type this build no longer has keeps nothing open
    await connector.forget(source.connection)
