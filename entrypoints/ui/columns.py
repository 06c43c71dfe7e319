"""The columns search: which sources' newest snapshots have a column so named (or so typed),
the API's `GET /v1/columns` as a page, through the same use case and the same cursors."""

from __future__ import annotations

from urllib.parse import urlencode

from litestar import get
from litestar.params import FromQuery
from litestar.response import Template

from application.columns import FindColumns, FindColumnsQuery
from domain.columns import ColumnFilter, ColumnPattern
from entrypoints.cursors import decode_column_cursor, encode_column_cursor
from entrypoints.ui.pages import UI_PATH, UiRequest, page, ui_of
from entrypoints.ui.paging import PAGE_SIZE

COLUMNS = f"{UI_PATH}/columns"


@get("/columns", opt={"scope": FindColumns.required_scope}, name="ui-columns")
async def columns_page(
    request: UiRequest,
    name: FromQuery[str] = "",
    type: FromQuery[str] = "",
    after: FromQuery[str] = "",
) -> Template:
    """The search form; with a name, a page of matches. An empty name is no search yet (the
    API's `name` is required); a name or type that cannot be a pattern is the API's 400."""
    if not name:
        return page(request, "columns.html", filters={"name": "", "type": type}, matches=None)
    query = FindColumnsQuery(
        actor=request.user,
        filter=ColumnFilter(
            name=ColumnPattern.parse("name", name),
            type=ColumnPattern.parse("type", type) if type else None,
        ),
        limit=PAGE_SIZE,
        after=decode_column_cursor(after) if after else None,
    )
    found = await ui_of(request).use_case("find_columns")(query)
    following = None
    if found.next_key is not None:
        kept = [("name", name), *([("type", type)] if type else [])]
        following = (
            f"{COLUMNS}?{urlencode([*kept, ('after', encode_column_cursor(found.next_key))])}"
        )
    return page(
        request,
        "columns.html",
        filters={"name": name, "type": type},
        matches=found.matches,
        next_page=following,
        first_page=f"{COLUMNS}?{urlencode([('name', name), *([('type', type)] if type else [])])}"
        if after
        else None,
    )


HANDLERS = [columns_page]
