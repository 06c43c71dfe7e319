"""A source's watch, as a panel of its page: how often its schema is checked and how the last
check went; a writer sets the interval or stops the watch (the API's `PUT` and `DELETE
.../watch`, through the same decoder and use cases)."""

from __future__ import annotations

from litestar import post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from application.watches import DeleteWatch, PutWatch, WatchQuery
from domain.errors import DomainError, WatchNotFound
from domain.sources import Source
from domain.watches import Watch
from entrypoints.runtime.outcomes import outcome_of
from entrypoints.ui.pages import FormErrors, UiRequest, ui_of
from entrypoints.ui.sources import SOURCES, source_of, source_panels, source_view
from entrypoints.watch_shapes import put_watch_command


async def watch_of(request: UiRequest, source: Source) -> Watch | None:
    """The source's watch, or None when it has none."""
    try:
        watch: Watch = await ui_of(request).use_case("get_watch")(
            WatchQuery(request.user, source.id)
        )
    except WatchNotFound:
        return None
    return watch


def _interval(text: str) -> object:
    # Text that is not a whole number goes to the decoder as it is, which says so.
    return int(text) if text.strip().isdigit() else text


@post("/sources/{source_id:str}/watch", opt={"scope": PutWatch.required_scope}, status_code=303)
async def put_watch(request: UiRequest, source_id: FromPath[str]) -> Template | Redirect:
    source = await source_of(request, source_id)
    form = await request.form()
    body = {"interval_seconds": _interval(str(form.get("interval_seconds", "")))}
    try:
        await ui_of(request).use_case("put_watch")(put_watch_command(request.user, source.id, body))
    except DomainError as exc:
        errors = FormErrors(outcome_of(exc))
        return await source_view(request, source, errors.outcome.status, watch_errors=errors)
    return Redirect(f"{SOURCES}/{source.id}", status_code=303)


@post(
    "/sources/{source_id:str}/watch/delete",
    opt={"scope": DeleteWatch.required_scope},
    status_code=303,
)
async def delete_watch(request: UiRequest, source_id: FromPath[str]) -> Redirect:
    source = await source_of(request, source_id)
    await ui_of(request).use_case("delete_watch")(WatchQuery(request.user, source.id))
    return Redirect(f"{SOURCES}/{source.id}", status_code=303)


source_panels.append(("watch", watch_of))
HANDLERS = [put_watch, delete_watch]
