"""Use cases on the audit trail: list it (nothing changes or deletes it)."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from application.ports import EventRepository
from application.sources import LIST_LIMIT_MAX, require
from domain.errors import InvalidInput
from domain.events import EventFilter, EventKey, EventPage
from domain.keys import Principal, Scope

EVENT_LIMIT_DEFAULT = 100
"""The page the API answers when no `limit` is asked: the trail only grows."""


@attrs.frozen
class ListEventsQuery:
    """List events oldest first, filtered, optionally one page at a time."""

    actor: Principal
    filter: EventFilter = attrs.field(factory=EventFilter)
    limit: int | None = None
    after: EventKey | None = None


@attrs.frozen
class ListEvents:
    """The audit trail, for keys with `audit:read`."""

    required_scope = Scope.AUDIT

    _events: EventRepository

    async def __call__(self, query: ListEventsQuery) -> EventPage:
        require(query.actor, self.required_scope)
        if query.limit is not None and not 1 <= query.limit <= LIST_LIMIT_MAX:
            raise InvalidInput.single("limit", f"must be between 1 and {LIST_LIMIT_MAX}")
        since = query.filter.since
        if since is not None and not _in_utc_range(since):
            raise InvalidInput.single("since", "must lie between years 1 and 9999 once in UTC")
        return await self._events.list(query.filter, query.limit, query.after)


def _in_utc_range(at: datetime) -> bool:
    """Whether this time, in its zone, is also a time of years 1-9999 in UTC (as stored)."""
    try:
        at.astimezone(UTC)
    except OverflowError:
        return False
    return True
