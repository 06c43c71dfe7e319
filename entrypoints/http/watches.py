"""The Watches API: a source's one watch (`/v1/sources/{id}/watch`) and every watch (`/v1/watches`).

Thin handlers: parse, call one use case, shape the answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, delete, get, put
from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, Parameter

from application.watches import (
    DeleteWatch,
    GetWatch,
    ListWatches,
    ListWatchesQuery,
    PutWatch,
    WatchQuery,
)
from domain.errors import FieldError, InvalidInput
from domain.keys import Principal
from domain.sources import parse_source_id
from domain.watches import INTERVAL_MAX, INTERVAL_MIN, WatchStatus
from entrypoints.container import Container
from entrypoints.cursors import decode_watch_cursor, encode_watch_cursor
from entrypoints.http.bodies import JSON
from entrypoints.http.openapi import responses
from entrypoints.http.query import check_query
from entrypoints.presenters import Problem
from entrypoints.watch_shapes import WatchOut, put_watch_command

AuthRequest = Request[Principal, str, Any]


def _watch_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The problems of a route on a source's watch: its 404 is one of two types."""
    documented = responses(*statuses)
    documented[404] = ResponseSpec(
        data_container=Problem,
        description="No source has this id (`source-not-found`), or the source has no watch"
        " (`watch-not-found`)",
        media_type="application/problem+json",
        generate_examples=False,
    )
    return documented


def _watch_use_cases(request: AuthRequest) -> WatchUseCases:
    found: WatchUseCases = request.app.state.watch_use_cases
    return found


class WatchUseCases:
    """The watches' use cases, made once per app from its container (as `UseCases` does)."""

    def __init__(self, container: Container) -> None:
        self.put_watch: PutWatch = container.put_watch()
        self.get_watch: GetWatch = container.get_watch()
        self.delete_watch: DeleteWatch = container.delete_watch()
        self.list_watches: ListWatches = container.list_watches()


@dataclass
class WatchBodyOperation(Operation):
    """The PUT's body, read by the handler itself (so that every bad field is one 400)."""

    def __post_init__(self) -> None:
        interval = Schema(
            type=OpenAPIType.INTEGER,
            minimum=INTERVAL_MIN,
            maximum=INTERVAL_MAX,
            description="Seconds from one check to the next",
        )
        schema = Schema(
            type=OpenAPIType.OBJECT,
            properties={"interval_seconds": interval},
            required=["interval_seconds"],
            additional_properties=False,
        )
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=schema)}, required=True
        )


class SourceWatchController(Controller):
    """`/v1/sources/{id}/watch`: the source's one watch."""

    path = "/v1/sources/{source_id:str}/watch"
    tags = ["watches"]

    @put(
        "/",
        opt={"scope": PutWatch.required_scope, "media_types": JSON},
        summary="Watch a source: check its schema every interval_seconds (replaces its watch)",
        responses=_watch_responses(400, 401, 403, 413, 415, 503),
        operation_class=WatchBodyOperation,
        status_code=200,
    )
    async def put_watch(self, request: AuthRequest, source_id: FromPath[str]) -> WatchOut:
        check_query(request.query_params)
        ident = parse_source_id(source_id)
        command = put_watch_command(request.user, ident, await request.json())
        return WatchOut.of(await _watch_use_cases(request).put_watch(command))

    @get(
        "/",
        opt={"scope": GetWatch.required_scope},
        summary="Get a source's watch (404 watch-not-found if it has none)",
        responses=_watch_responses(400, 401, 403, 503),
    )
    async def get_watch(self, request: AuthRequest, source_id: FromPath[str]) -> WatchOut:
        check_query(request.query_params)
        query = WatchQuery(request.user, parse_source_id(source_id))
        return WatchOut.of(await _watch_use_cases(request).get_watch(query))

    @delete(
        "/",
        opt={"scope": DeleteWatch.required_scope},
        summary="Stop watching a source (its history stays)",
        responses=_watch_responses(400, 401, 403, 503),
    )
    async def delete_watch(self, request: AuthRequest, source_id: FromPath[str]) -> None:
        check_query(request.query_params)
        command = WatchQuery(request.user, parse_source_id(source_id))
        await _watch_use_cases(request).delete_watch(command)


NEXT_PAGE = ResponseHeader(
    name="Link",
    description='The next page, as `<url>; rel="next"`, when there is one',
    documentation_only=True,
)


def _status(raw: str | None) -> WatchStatus | None:
    if raw is None:
        return None
    try:
        return WatchStatus(raw)
    except ValueError:
        known = ", ".join(s.value for s in WatchStatus)
        raise InvalidInput([FieldError("status", f"must be one of {known}")]) from None


class WatchesController(Controller):
    """`/v1/watches`: every watch, soonest next check first."""

    path = "/v1/watches"
    tags = ["watches"]

    @get(
        "/",
        opt={"scope": ListWatches.required_scope},
        summary="List watches (soonest next check first)",
        responses=responses(400, 401, 403, 503),
        response_headers=[NEXT_PAGE],
    )
    async def list_watches(
        self,
        request: AuthRequest,
        status: Annotated[
            str | None,
            Parameter(
                description="Only watches in this status",
                schema_extra={"enum": [s.value for s in WatchStatus]},
            ),
        ] = None,
        limit: Annotated[int | None, Parameter(ge=1, le=1000, description="Page size")] = None,
        cursor: Annotated[
            str | None, Parameter(description="Opaque: from the previous page's Link header")
        ] = None,
    ) -> Response[list[WatchOut]]:
        check_query(
            request.query_params, scalars=("status", "limit", "cursor"), integers=("limit",)
        )
        query = ListWatchesQuery(
            actor=request.user,
            filter=_status(status),
            limit=limit,
            after=decode_watch_cursor(cursor) if cursor is not None else None,
        )
        page = await _watch_use_cases(request).list_watches(query)
        headers = {}
        if page.next_key is not None:
            following = [("status", status)] if status is not None else []
            following += [("limit", str(limit)), ("cursor", encode_watch_cursor(page.next_key))]
            headers["Link"] = f'<{self.path}?{urlencode(following)}>; rel="next"'
        return Response([WatchOut.of(w) for w in page.watches], headers=headers)
