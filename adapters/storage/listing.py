"""What the stores share: column lists, the event listing query of the SQL stores, paging by
fetching one row more, and text no store can hold (source listings: `source_query.py`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import attrs

from adapters.serialization import timestamp
from domain.events import Event, EventFilter, EventKey, EventPage
from domain.history import SchemaSnapshot
from domain.keys import ApiKey
from domain.sources import PageKey, Source, SourceFilter, SourcePage, SourceSummary

INLINE_PAGE_MAX = 100
"""Pages up to this many sources are made on the caller's event loop; a bigger listing's rows
become summaries on a thread (thousands would hold the loop for tens of milliseconds)."""


def columns(record: type[Any]) -> str:
    """The column list of a table that holds this record: its fields, in order (the keys of
    its row in `adapters.serialization`)."""
    return ", ".join(field.name for field in attrs.fields(record))


SOURCE_COLUMNS = columns(Source)
# A listing reads neither the connection nor its encrypted secrets.
SUMMARY_COLUMNS = columns(SourceSummary)
EVENT_COLUMNS = columns(Event)
KEY_COLUMNS = columns(ApiKey)
SNAPSHOT_COLUMNS = columns(SchemaSnapshot)


@attrs.frozen
class Dialect:
    """How one SQL store spells what the listing queries need."""

    param: str
    """A plain parameter: `?` or `%s`."""
    timestamp_param: str
    """A parameter compared with a stored timestamp."""
    uuid_param: str
    """A parameter compared with a stored id."""
    uuid_value: Callable[[UUID], Any]
    """An id as this store's driver binds it."""


class _Select:
    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.where: list[str] = []
        self.parameters: list[Any] = []

    def add(self, condition: str, *parameters: Any) -> None:
        self.where.append(condition)
        self.parameters += parameters

    def sql(self, columns: str, table: str, order: str, limit: int | None) -> str:
        sql = f"SELECT {columns} FROM {table}"
        if self.where:
            sql += " WHERE " + " AND ".join(self.where)
        sql += f" ORDER BY {order}"
        if limit is not None:
            # One row more than asked for says whether a next page exists.
            sql += f" LIMIT {self.dialect.param}"
            self.parameters.append(limit + 1)
        return sql


def event_listing(
    dialect: Dialect, event_filter: EventFilter, limit: int | None, after: EventKey | None
) -> tuple[str, list[Any]]:
    """The query (and its parameters) for one page of the audit trail, in time order."""
    select = _Select(dialect)
    if event_filter.source_id is not None:
        select.add(f"source_id = {dialect.uuid_param}", dialect.uuid_value(event_filter.source_id))
    if event_filter.action is not None:
        select.add(f"action = {dialect.param}", event_filter.action.value)
    if event_filter.actor is not None:
        select.add(f"actor = {dialect.param}", event_filter.actor)
    if event_filter.since is not None:
        select.add(f"at >= {dialect.timestamp_param}", timestamp(event_filter.since))
    if after is not None:
        select.add(
            f"(at, id) > ({dialect.timestamp_param}, {dialect.uuid_param})",
            timestamp(after.at),
            dialect.uuid_value(after.id),
        )
    return select.sql(EVENT_COLUMNS, "events", "at, id", limit), select.parameters


def storable(text: str) -> bool:
    """Whether a store can hold this text: no NUL (PostgreSQL) and no lone surrogate (UTF-8)."""
    return "\x00" not in text and not any("\ud800" <= ch <= "\udfff" for ch in text)


def can_match(source_filter: SourceFilter) -> bool:
    """False when a filter names text that no stored source can contain, so nothing matches."""
    values = [*source_filter.tags, source_filter.source_type or "", source_filter.name_prefix or ""]
    return all(storable(value) for value in values)


def page(rows: Sequence[SourceSummary], limit: int | None) -> SourcePage:
    """A page from at most `limit + 1` rows in listing order: the extra row says there is more."""
    if limit is None or len(rows) <= limit:
        return SourcePage(tuple(rows))
    last = rows[limit - 1]
    return SourcePage(tuple(rows[:limit]), PageKey(last.registered_at, last.id))


def event_page(rows: Sequence[Event], limit: int | None) -> EventPage:
    """A page of events from at most `limit + 1` rows in trail order."""
    if limit is None or len(rows) <= limit:
        return EventPage(tuple(rows))
    last = rows[limit - 1]
    return EventPage(tuple(rows[:limit]), EventKey(last.at, last.id))
