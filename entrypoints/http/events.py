"""The audit trail API: `GET /v1/events`, read-only (nothing in the API changes an event)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get
from litestar.datastructures import ResponseHeader
from litestar.params import Parameter

from application.events import EVENT_LIMIT_DEFAULT, ListEvents, ListEventsQuery
from domain.events import Action
from domain.keys import Principal
from entrypoints.cursors import decode_event_cursor, encode_event_cursor
from entrypoints.http.openapi import responses
from entrypoints.http.query import check_query
from entrypoints.http.use_cases import use_cases
from entrypoints.presenters import EventOut
from entrypoints.requests import event_filter

EVENT_PARAMETERS = ("source_id", "action", "actor", "since", "limit", "cursor")


class EventsController(Controller):
    """`/v1/events`: the audit trail, oldest first."""

    path = "/v1/events"
    tags = ["audit"]

    @get(
        "/",
        opt={"scope": ListEvents.required_scope},
        summary="List audit events (oldest first); needs the audit:read scope",
        responses=responses(400, 401, 403, 503),
        response_headers=[
            ResponseHeader(
                name="Link",
                description='The next page, as `<url>; rel="next"`, when there is one',
                documentation_only=True,
            )
        ],
    )
    async def list_events(
        self,
        request: Request[Principal, str, Any],
        source_id: Annotated[
            str | None,
            Parameter(description="Only this source's events", schema_extra={"format": "uuid"}),
        ] = None,
        action: Annotated[
            str | None,
            Parameter(
                description="Only this action", schema_extra={"enum": [a.value for a in Action]}
            ),
        ] = None,
        actor: Annotated[str | None, Parameter(description="Only this actor (tdbk_...)")] = None,
        since: Annotated[
            str | None,
            Parameter(
                description="Only events at or after this RFC 3339 time",
                schema_extra={"format": "date-time"},
            ),
        ] = None,
        limit: Annotated[
            int, Parameter(ge=1, le=1000, description="Page size (100 when not given)")
        ] = EVENT_LIMIT_DEFAULT,
        cursor: Annotated[
            str | None, Parameter(description="Opaque: from the previous page's Link header")
        ] = None,
    ) -> Response[list[EventOut]]:
        check_query(request.query_params, scalars=EVENT_PARAMETERS, integers=("limit",))
        query = ListEventsQuery(
            actor=request.user,
            filter=event_filter(source_id, action, actor, since),
            limit=limit,
            after=decode_event_cursor(cursor) if cursor is not None else None,
        )
        page = await use_cases(request).list_events(query)
        headers = {}
        if page.next_key is not None:
            given = {"source_id": source_id, "action": action, "actor": actor, "since": since}
            following = [(k, v) for k, v in given.items() if v is not None]
            following += [("limit", str(limit)), ("cursor", encode_event_cursor(page.next_key))]
            headers["Link"] = f'<{self.path}?{urlencode(following)}>; rel="next"'
        return Response([EventOut.of(e) for e in page.events], headers=headers)
