"""Use cases on the audit trail: list it (nothing changes or deletes it)."""

from __future__ import annotations

import attrs

from application.ports import EventRepository
from application.sources import LIST_LIMIT_MAX, require
from domain.errors import InvalidInput
from domain.events import EventFilter, EventKey, EventPage
from domain.keys import Principal, Scope


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

    def __call__(self, query: ListEventsQuery) -> EventPage:
        require(query.actor, self.required_scope)
        if query.limit is not None and not 1 <= query.limit <= LIST_LIMIT_MAX:
            raise InvalidInput.single("limit", f"must be between 1 and {LIST_LIMIT_MAX}")
        return self._events.list(query.filter, query.limit, query.after)
