"""The audit trail, oldest first as the API lists it, filtered and paged."""

from __future__ import annotations

from urllib.parse import urlencode

from litestar import get
from litestar.params import FromQuery
from litestar.response import Template

from application.events import ListEvents, ListEventsQuery
from domain.events import Action, EventKey
from entrypoints.requests import event_filter
from entrypoints.ui.pages import UI_PATH, UiRequest, page, ui_of
from entrypoints.ui.paging import PAGE_SIZE, parse_position, position


@get("/events", opt={"scope": ListEvents.required_scope}, name="ui-events")
async def events_page(
    request: UiRequest,
    source_id: FromQuery[str] = "",
    action: FromQuery[str] = "",
    actor: FromQuery[str] = "",
    since: FromQuery[str] = "",
    after: FromQuery[str] = "",
) -> Template:
    given = {"source_id": source_id, "action": action, "actor": actor, "since": since}
    query = ListEventsQuery(
        actor=request.user,
        # The API's own reading of these filters (and its 400s).
        filter=event_filter(*(value or None for value in given.values())),
        limit=PAGE_SIZE,
        after=EventKey(*parse_position(after)) if after else None,
    )
    trail = await ui_of(request).use_case("list_events")(query)
    following = None
    if trail.next_key is not None:
        kept = [(k, v) for k, v in given.items() if v]
        at = position(trail.next_key.at, trail.next_key.id)
        following = f"{UI_PATH}/events?{urlencode([*kept, ('after', at)])}"
    return page(
        request,
        "events.html",
        events=trail.events,
        filters=given,
        actions=[a.value for a in Action],
        next_page=following,
        first_page=bool(after),
    )


HANDLERS = [events_page]
