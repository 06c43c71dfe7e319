"""Use cases on the audit trail: list it (nothing changes or deletes it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias

import attrs

from application.ports import EventRepository
from application.sources import PagedListing, PageQuery, guarded
from domain.errors import InvalidInput
from domain.events import EventFilter, EventKey, EventPage
from domain.keys import Scope

EVENT_LIMIT_DEFAULT = 100
"""The page the API answers when no `limit` is asked: the trail only grows."""


ListEventsQuery: TypeAlias = PageQuery[EventFilter, EventKey]


@guarded(Scope.AUDIT)
@attrs.frozen
class ListEvents(PagedListing[EventFilter, EventKey, EventPage]):
    """The audit trail, for keys with `audit:read`."""

    _events: EventRepository

    async def _page(self, query: ListEventsQuery) -> EventPage:
        event_filter = EventFilter() if query.filter is None else query.filter
        since = event_filter.since
        if since is not None and not _in_utc_range(since):
            raise InvalidInput.single("since", "must lie between years 1 and 9999 once in UTC")
        return await self._events.list(event_filter, query.limit, query.after)


def _in_utc_range(at: datetime) -> bool:
    """Whether this time, in its zone, is also a time of years 1-9999 in UTC (as stored)."""
    try:
        at.astimezone(UTC)
    except OverflowError:
        return False
    return True
