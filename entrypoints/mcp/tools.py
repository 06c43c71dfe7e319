"""The MCP tools: each parses its arguments, awaits the use case of the matching HTTP route and
shapes its answer with the API's presenters.

A tool acts as its principal with `sources:secrets` taken away, so every answer shows secrets
masked whatever the key may read (and no `source.secrets_read` is recorded, as none is shown).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs
import msgspec

from application.columns import COLUMN_LIMIT_DEFAULT, FindColumns, FindColumnsQuery
from application.events import EVENT_LIMIT_DEFAULT, ListEvents, ListEventsQuery
from application.history import (
    HISTORY_LIMIT_DEFAULT,
    GetSchemaHistory,
    InspectSchema,
    InspectSchemaQuery,
    SchemaHistoryQuery,
)
from application.sources import (
    CheckSourceConnection,
    CheckSourceConnectionQuery,
    DeleteSource,
    DeleteSourceCommand,
    GetSource,
    GetSourceQuery,
    ListSources,
    ListSourcesQuery,
    RegisterSource,
    UpdateSource,
)
from domain.columns import ColumnFilter, ColumnPattern
from domain.errors import FieldError, InvalidInput
from domain.events import Action, EventFilter
from domain.keys import Principal, Scope
from domain.sources import IfMatch, SourceFilter, parse_source_id
from entrypoints.cursors import (
    decode_column_cursor,
    decode_cursor,
    decode_event_cursor,
    decode_history_cursor,
    encode_column_cursor,
    encode_cursor,
    encode_event_cursor,
    encode_history_cursor,
)
from entrypoints.mcp import schemas
from entrypoints.presenters import (
    ColumnMatchOut,
    ConnectionCheckOut,
    EventOut,
    SchemaOut,
    SnapshotOut,
    SourceListItem,
    SourceRecord,
    change_out,
)
from entrypoints.requests import RegisterSourceRequest, update_command

SOURCES_LIMIT_DEFAULT = 100
"""The page `list_sources` answers when no `limit` is asked (an agent reads what it is sent)."""


class SourcePageOut(msgspec.Struct):
    """A page of sources, and the cursor of the next (null: this is the last)."""

    sources: list[SourceListItem]
    next_cursor: str | None


class HistoryPageOut(msgspec.Struct):
    """A page of a source's snapshots, newest first, and the cursor of the next."""

    snapshots: list[SnapshotOut]
    next_cursor: str | None


class EventPageOut(msgspec.Struct):
    """A page of the audit trail, oldest first, and the cursor of the next."""

    events: list[EventOut]
    next_cursor: str | None


class ColumnPageOut(msgspec.Struct):
    """A page of matching columns, and the cursor of the next."""

    columns: list[ColumnMatchOut]
    next_cursor: str | None


class UpdatedOut(msgspec.Struct):
    """An update's answer: the source's id, new version and time, and the record as the key
    may read it (null without `sources:read`)."""

    id: str
    version: int
    updated_at: str
    source: SourceRecord | None


class DeletedOut(msgspec.Struct):
    """A deletion's answer: which source went (its data is not touched)."""

    deleted: bool
    source_id: str


Run = Callable[["Arguments", Any, Principal], Awaitable[msgspec.Struct]]


@attrs.frozen
class Tool:
    """One tool: what it is called and does, the scope of its route, what it takes and answers,
    and the use case it awaits (a container provider's name)."""

    name: str
    description: str
    scope: Scope
    use_case: str
    input_schema: dict[str, Any] | None
    output: type[msgspec.Struct]
    run: Run
    writes: bool = False

    @property
    def output_schema(self) -> dict[str, Any]:
        return schemas.output_schema(self.output)


class Arguments:
    """A tool's arguments, read field by field; every field of the wrong shape is collected
    and raised at once (`done`) as one `InvalidInput`, as a body's are."""

    def __init__(self, values: Mapping[str, Any] | None, known: AbstractSet[str]) -> None:
        self.values = dict(values or {})
        self.errors = [
            FieldError(name, "is not a known argument")
            for name in sorted(self.values.keys() - known)
        ]

    def _typed(self, name: str, kind: type, what: str, required: bool = False) -> Any:
        value = self.values.get(name)
        if value is None:
            if required:
                self.errors.append(FieldError(name, "is required"))
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.errors.append(FieldError(name, f"must be {what}"))
            return None
        return value

    def text(self, name: str, required: bool = False) -> str | None:
        value: str | None = self._typed(name, str, "a string", required)
        return value

    def integer(self, name: str, default: int) -> int:
        value = self._typed(name, int, "an integer")
        return default if value is None else int(value)

    def flag(self, name: str) -> bool:
        return bool(self._typed(name, bool, "true or false"))

    def texts(self, name: str) -> tuple[str, ...]:
        value = self._typed(name, list, "an array of strings")
        if value is None:
            return ()
        if not all(isinstance(v, str) for v in value):
            self.errors.append(FieldError(name, "must be an array of strings"))
            return ()
        return tuple(value)

    def source_id(self) -> UUID:
        raw = self.text("source_id", required=True)
        self.done()
        return parse_source_id(raw or "")

    def if_match(self) -> IfMatch:
        value = self.values.get("if_match")
        if value == "*":
            return IfMatch()
        if type(value) is int and value >= 1:
            return IfMatch(frozenset({value}))
        message = "is required" if value is None else 'must be a version (an integer) or "*"'
        raise InvalidInput([*self.errors, FieldError("if_match", message)])

    def done(self) -> None:
        if self.errors:
            raise InvalidInput(self.errors)


def _next(key: Any, encode: Callable[[Any], str]) -> str | None:
    return None if key is None else encode(key)


async def _list_sources(args: Arguments, use: ListSources, actor: Principal) -> SourcePageOut:
    tags = args.texts("tag")
    source_type, name_prefix = args.text("source_type"), args.text("name_prefix")
    limit, cursor = args.integer("limit", SOURCES_LIMIT_DEFAULT), args.text("cursor")
    args.done()
    query = ListSourcesQuery(
        actor=actor,
        filter=SourceFilter(tags=tags, source_type=source_type, name_prefix=name_prefix),
        limit=limit,
        after=decode_cursor(cursor) if cursor is not None else None,
    )
    page = await use(query)
    sources = [SourceListItem.of(s) for s in page.sources]
    return SourcePageOut(sources, _next(page.next_key, encode_cursor))


async def _get_source(args: Arguments, use: GetSource, actor: Principal) -> SourceRecord:
    return SourceRecord.of(await use(GetSourceQuery(actor, args.source_id())))


async def _get_schema(args: Arguments, use: InspectSchema, actor: Principal) -> SchemaOut:
    return SchemaOut.of(await use(InspectSchemaQuery(actor, args.source_id())))


async def _history(args: Arguments, use: GetSchemaHistory, actor: Principal) -> HistoryPageOut:
    limit, cursor = args.integer("limit", HISTORY_LIMIT_DEFAULT), args.text("cursor")
    ident = args.source_id()
    before = decode_history_cursor(cursor, ident) if cursor is not None else None
    page = await use(SchemaHistoryQuery(actor, ident, limit=limit, before=before))
    following = None
    if page.next_before is not None:
        following = encode_history_cursor(ident, page.next_before)
    return HistoryPageOut([SnapshotOut.of(e) for e in page.entries], following)


async def _find_columns(args: Arguments, use: FindColumns, actor: Principal) -> ColumnPageOut:
    name, type_ = args.text("name", required=True), args.text("type")
    limit, cursor = args.integer("limit", COLUMN_LIMIT_DEFAULT), args.text("cursor")
    args.done()
    column_filter = ColumnFilter(
        name=ColumnPattern.parse("name", name or ""),
        type=None if type_ is None else ColumnPattern.parse("type", type_),
    )
    after = decode_column_cursor(cursor) if cursor is not None else None
    page = await use(FindColumnsQuery(actor, column_filter, limit, after))
    matches = [ColumnMatchOut.of(m) for m in page.matches]
    return ColumnPageOut(matches, _next(page.next_key, encode_column_cursor))


async def _test_connection(
    args: Arguments, use: CheckSourceConnection, actor: Principal
) -> ConnectionCheckOut:
    return ConnectionCheckOut.of(await use(CheckSourceConnectionQuery(actor, args.source_id())))


def _event_filter(args: Arguments) -> EventFilter:
    source_id, action = args.text("source_id"), args.text("action")
    actor, since = args.text("actor"), args.text("since")
    parsed_id = parsed_action = parsed_since = None
    try:
        parsed_id = UUID(source_id) if source_id is not None else None
    except ValueError:
        args.errors.append(FieldError("source_id", "must be a UUID"))
    try:
        parsed_action = Action(action) if action is not None else None
    except ValueError:
        known = ", ".join(a.value for a in Action)
        args.errors.append(FieldError("action", f"must be one of {known}"))
    try:
        parsed_since = datetime.fromisoformat(since) if since is not None else None
        if parsed_since is not None and parsed_since.tzinfo is None:
            raise ValueError("no offset")
    except ValueError:
        args.errors.append(FieldError("since", "must be an RFC 3339 timestamp with an offset"))
    return EventFilter(source_id=parsed_id, action=parsed_action, actor=actor, since=parsed_since)


async def _list_events(args: Arguments, use: ListEvents, actor: Principal) -> EventPageOut:
    event_filter = _event_filter(args)
    limit, cursor = args.integer("limit", EVENT_LIMIT_DEFAULT), args.text("cursor")
    args.done()
    after = decode_event_cursor(cursor) if cursor is not None else None
    page = await use(ListEventsQuery(actor, event_filter, limit, after))
    events = [EventOut.of(e) for e in page.events]
    return EventPageOut(events, _next(page.next_key, encode_event_cursor))


async def _register(args: Arguments, use: RegisterSource, actor: Principal) -> SourceRecord:
    verify = args.flag("verify")
    args.done()
    body = {k: v for k, v in args.values.items() if k != "verify"}
    source = await use(RegisterSourceRequest.decode(body, root="arguments").command(actor, verify))
    return SourceRecord.of(source)


async def _update(args: Arguments, use: UpdateSource, actor: Principal) -> UpdatedOut:
    verify = args.flag("verify")
    patch = args.values.get("patch")
    if patch is None:
        args.errors.append(FieldError("patch", "is required"))
    ident = args.source_id()
    condition = args.if_match()
    answer = change_out(await use(update_command(actor, ident, patch, condition, verify)))
    record = answer if isinstance(answer, SourceRecord) else None
    stamp = msgspec.to_builtins(answer)
    return UpdatedOut(str(answer.id), answer.version, stamp["updated_at"], record)


async def _delete(args: Arguments, use: DeleteSource, actor: Principal) -> DeletedOut:
    ident = args.source_id()
    await use(DeleteSourceCommand(actor, ident, args.if_match()))
    return DeletedOut(deleted=True, source_id=str(ident))


def _paged(**properties: Any) -> dict[str, Any]:
    return {**properties, "limit": schemas.LIMIT, "cursor": schemas.CURSOR}


_SOURCE_ID = {"source_id": schemas.SOURCE_ID}

TOOLS: tuple[Tool, ...] = (
    Tool(
        "list_sources",
        "List registered sources (summaries, oldest first), filtered by tags, type or name"
        " prefix; 100 a page unless `limit` says otherwise",
        ListSources.required_scope,
        "list_sources",
        schemas.tool_input(
            _paged(
                tag={"type": "array", "items": {"type": "string"}, "description": "Every one"},
                source_type={"type": "string"},
                name_prefix={"type": "string"},
            )
        ),
        SourcePageOut,
        _list_sources,
    ),
    Tool(
        "get_source",
        "One source with its connection (secrets always masked) and its `version`",
        GetSource.required_scope,
        "get_source",
        schemas.tool_input(_SOURCE_ID, ["source_id"]),
        SourceRecord,
        _get_source,
    ),
    Tool(
        "get_schema",
        "Inspect a source's live columns now (a changed schema is recorded in its history)",
        InspectSchema.required_scope,
        "inspect_schema",
        schemas.tool_input(_SOURCE_ID, ["source_id"]),
        SchemaOut,
        _get_schema,
    ),
    Tool(
        "get_schema_history",
        "A source's schema snapshots, newest first, each with its changes and whether they"
        " break consumers",
        GetSchemaHistory.required_scope,
        "schema_history",
        schemas.tool_input(_paged(**_SOURCE_ID), ["source_id"]),
        HistoryPageOut,
        _history,
    ),
    Tool(
        "find_columns",
        "Which sources have a column so named (and typed), from each source's newest"
        " snapshot: `name` case-insensitive, `*` as a wildcard (`*` alone: any)",
        FindColumns.required_scope,
        "find_columns",
        schemas.tool_input(_paged(name=schemas.PATTERN, type=schemas.PATTERN), ["name"]),
        ColumnPageOut,
        _find_columns,
    ),
    Tool(
        "test_connection",
        "Test a registered source's connection now (answers whatever the backend says)",
        CheckSourceConnection.required_scope,
        "check_source_connection",
        schemas.tool_input(_SOURCE_ID, ["source_id"]),
        ConnectionCheckOut,
        _test_connection,
    ),
    Tool(
        "list_events",
        "The audit trail, oldest first: who registered, changed, deleted or read what",
        ListEvents.required_scope,
        "list_events",
        schemas.tool_input(
            _paged(
                source_id=schemas.SOURCE_ID,
                action=schemas.ACTION,
                actor={"type": "string", "description": "tdbk_<key id>, or tdb-cli"},
                since={"type": "string", "format": "date-time"},
            )
        ),
        EventPageOut,
        _list_events,
    ),
    Tool(
        "register_source",
        "Register a source (its connection is validated; `verify` tests it first)",
        RegisterSource.required_scope,
        "register_source",
        None,
        SourceRecord,
        _register,
        writes=True,
    ),
    Tool(
        "update_source",
        "Change a source with a JSON Merge Patch, only at the version `if_match` names",
        UpdateSource.required_scope,
        "update_source",
        None,
        UpdatedOut,
        _update,
        writes=True,
    ),
    Tool(
        "delete_source",
        "Delete a source from the registry (its data is not touched), only at the version"
        " `if_match` names",
        DeleteSource.required_scope,
        "delete_source",
        schemas.tool_input({**_SOURCE_ID, "if_match": schemas.IF_MATCH}, ["source_id", "if_match"]),
        DeletedOut,
        _delete,
        writes=True,
    ),
)
"""Every tool, the route's scope on each; `register_source` and `update_source` take the
request bodies of the OpenAPI document (their `input_schema` is None here:
`schemas.completed_inputs` makes them)."""
