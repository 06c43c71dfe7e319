"""What the stores' listings share: paging by fetching one row more, text no store can hold."""

from __future__ import annotations

from collections.abc import Sequence

from domain.events import Event, EventKey, EventPage
from domain.sources import PageKey, SourceFilter, SourcePage, SourceSummary


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
