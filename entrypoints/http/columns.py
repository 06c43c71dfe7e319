"""`GET /v1/columns`: which sources' newest snapshots have a column so named (or so typed)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get
from litestar.datastructures import ResponseHeader
from litestar.params import Parameter

from application.columns import COLUMN_LIMIT_DEFAULT, FindColumns, FindColumnsQuery
from domain.columns import PATTERN_MAX, ColumnFilter, ColumnPattern
from domain.errors import InvalidInput
from domain.keys import Principal
from entrypoints.cursors import decode_column_cursor, encode_column_cursor
from entrypoints.http.openapi import responses
from entrypoints.http.query import check_query
from entrypoints.http.use_cases import use_cases
from entrypoints.presenters import ColumnMatchOut

PATTERN = "Case-insensitive; `*` stands for any run of characters, every other character for itself"


def column_filter(name: str | None, type_: str | None) -> ColumnFilter:
    """The filter of a search's `name` (required) and `type`: `InvalidInput` naming the one
    that is missing or cannot be a pattern."""
    if name is None:
        raise InvalidInput.single("name", "is required (`*` for any name)")
    return ColumnFilter(
        name=ColumnPattern.parse("name", name),
        type=None if type_ is None else ColumnPattern.parse("type", type_),
    )


class ColumnsController(Controller):
    """`/v1/columns`: search the columns of every source's newest snapshot."""

    path = "/v1/columns"
    tags = ["columns"]

    @get(
        "/",
        opt={"scope": FindColumns.required_scope},
        summary="Find the sources whose newest snapshot has a column so named or typed",
        description="Answers from each source's newest schema snapshot (what the last"
        " inspection that found a change recorded), through an index: no backend is asked."
        " Ordered by the column's name (case-folded), then source id, then the column's place.",
        responses=responses(400, 401, 403, 503),
        response_headers=[
            ResponseHeader(
                name="Link",
                description='The next page, as `<url>; rel="next"`, when there is one',
                documentation_only=True,
            )
        ],
    )
    async def find_columns(
        self,
        request: Request[Principal, str, Any],
        # Declared optional so that its absence is the use case's 400 naming it, as every
        # other error is (Litestar's own names no field); the document says it is required.
        name: Annotated[
            str | None,
            Parameter(
                description=f"The column's name. {PATTERN} (`*` alone: any name)",
                min_length=1,
                max_length=PATTERN_MAX,
                required=True,
            ),
        ] = None,
        type: Annotated[
            str | None,
            Parameter(
                description=f"The column's type. {PATTERN}", min_length=1, max_length=PATTERN_MAX
            ),
        ] = None,
        limit: Annotated[
            int, Parameter(ge=1, le=1000, description="Page size (100 when not given)")
        ] = COLUMN_LIMIT_DEFAULT,
        cursor: Annotated[
            str | None, Parameter(description="Opaque: from the previous page's Link header")
        ] = None,
    ) -> Response[list[ColumnMatchOut]]:
        check_query(
            request.query_params, scalars=("name", "type", "limit", "cursor"), integers=("limit",)
        )
        wanted = column_filter(name, type)
        query = FindColumnsQuery(
            actor=request.user,
            filter=wanted,
            limit=limit,
            after=decode_column_cursor(cursor) if cursor is not None else None,
        )
        page = await use_cases(request).find_columns(query)
        headers = {}
        if page.next_key is not None:
            given = [("name", wanted.name.text)] + ([("type", type)] if type is not None else [])
            given += [("limit", str(limit)), ("cursor", encode_column_cursor(page.next_key))]
            headers["Link"] = f'<{self.path}?{urlencode(given)}>; rel="next"'
        return Response([ColumnMatchOut.of(m) for m in page.matches], headers=headers)
