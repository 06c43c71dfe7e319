"""The pages of sources: the list, one source, registering, editing, testing, deleting.

Each handler reads the page's input, awaits one use case (the API's own), and renders; a
refused form is shown again with the runtime's outcome (the API's status, detail and field
errors)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import attrs
from litestar import get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from application.sources import (
    CheckSourceConnection,
    CheckSourceConnectionQuery,
    DeleteSource,
    DeleteSourceCommand,
    GetSource,
    GetSourceQuery,
    ListSources,
    ListSourcesQuery,
    RegisterSource,
    UpdateSource,
)
from domain.errors import DomainError
from domain.keys import Principal, Scope
from domain.sources import PageKey, Source, SourceFilter, parse_if_match, parse_source_id
from entrypoints.requests import RegisterSourceRequest, update_command
from entrypoints.runtime.outcomes import outcome_of
from entrypoints.ui import forms
from entrypoints.ui.pages import UI_PATH, FormErrors, UiRequest, page, ui_of
from entrypoints.ui.paging import PAGE_SIZE, parse_position, position

SOURCES = f"{UI_PATH}/sources"


def _reading(user: Principal) -> Principal:
    """The signed-in key, less `sources:secrets`: the UI shows secrets masked whatever the key
    may read (and so records no `source.secrets_read`)."""
    return attrs.evolve(user, scopes=user.scopes - {Scope.SECRETS})


@get("/sources", opt={"scope": ListSources.required_scope}, name="ui-sources")
async def sources_page(
    request: UiRequest,
    tag: FromQuery[list[str] | None] = None,
    source_type: FromQuery[str] = "",
    name_prefix: FromQuery[str] = "",
    after: FromQuery[str] = "",
    deleted: FromQuery[bool] = False,
) -> Template:
    tags = tuple(forms.tags(",".join(tag or ())))
    query = ListSourcesQuery(
        actor=request.user,
        filter=SourceFilter(
            tags=tags, source_type=source_type or None, name_prefix=name_prefix or None
        ),
        limit=PAGE_SIZE,
        after=PageKey(*parse_position(after)) if after else None,
    )
    listing = await ui_of(request).use_case("list_sources")(query)
    following = None
    if listing.next_key is not None:
        given = [("tag", t) for t in tags] + [
            (k, v) for k, v in (("source_type", source_type), ("name_prefix", name_prefix)) if v
        ]
        at = position(listing.next_key.registered_at, listing.next_key.id)
        following = f"{SOURCES}?{urlencode([*given, ('after', at)])}"
    return page(
        request,
        "sources.html",
        sources=listing.sources,
        tags=", ".join(tags),
        source_type=source_type,
        name_prefix=name_prefix,
        types=ui_of(request).container.connectors().types(),
        next_page=following,
        first_page=bool(after),
        deleted=deleted,
    )


async def source_of(request: UiRequest, source_id: str) -> Source:
    """The source as the pages show it (secrets masked); `SourceNotFound` for an unknown id."""
    query = GetSourceQuery(_reading(request.user), parse_source_id(source_id))
    source: Source = await ui_of(request).use_case("get_source")(query)
    return source


def _fields(request: UiRequest, source_type: str) -> Any:
    return ui_of(request).container.connectors().get(source_type).fields


# What a source's page shows beside the record: (name in the template, a coroutine reading it).
# A subject with a panel of its own (the watch) adds itself here.
source_panels: list[tuple[str, Callable[[UiRequest, Source], Awaitable[Any]]]] = []


async def source_view(
    request: UiRequest, source: Source, status: int = 200, **more: Any
) -> Template:
    """A source's page: its record, its connection (secrets masked) and its panels."""
    fields = _fields(request, source.source_type)
    secret = {f.name for f in fields if f.secret}
    panels = {name: await read(request, source) for name, read in source_panels}
    return page(
        request,
        "source.html",
        status=status,
        source=source,
        secret=secret,
        tab="source",
        **panels,
        **more,
    )


@get("/sources/{source_id:str}", opt={"scope": GetSource.required_scope}, name="ui-source")
async def source_page(request: UiRequest, source_id: FromPath[str]) -> Template:
    return await source_view(request, await source_of(request, source_id))


@post(
    "/sources/{source_id:str}/test",
    opt={"scope": CheckSourceConnection.required_scope},
    status_code=200,
)
async def test_source(request: UiRequest, source_id: FromPath[str]) -> Template:
    source = await source_of(request, source_id)
    query = CheckSourceConnectionQuery(request.user, source.id)
    check = await ui_of(request).use_case("check_source_connection")(query)
    return await source_view(request, source, check=check)


def _form_page(
    request: UiRequest,
    template: str,
    form: dict[str, Any],
    problem: DomainError | None,
    **more: Any,
) -> Template:
    errors = FormErrors(outcome_of(problem)) if problem is not None else None
    status = errors.outcome.status if errors is not None else 200
    return page(request, template, status=status, form=form, errors=errors, **more)


def _new_form(request: UiRequest, source_type: str, form: dict[str, Any], problem: Any) -> Template:
    types = ui_of(request).container.connectors().types()
    fields = _fields(request, source_type) if source_type in types else ()
    return _form_page(
        request, "register.html", form, problem, types=types, fields=fields, chosen=source_type
    )


@get("/sources/new", opt={"scope": RegisterSource.required_scope}, name="ui-register")
async def register_page(request: UiRequest, source_type: FromQuery[str] = "") -> Template:
    return _new_form(request, source_type, {"source_type": source_type}, None)


@post("/sources/new", opt={"scope": RegisterSource.required_scope}, status_code=303)
async def register(request: UiRequest) -> Template | Redirect:
    form = dict(await request.form())
    source_type = str(form.get("source_type", ""))
    try:
        fields = _fields(request, source_type)
        body = forms.register_body(fields, form)
        command = RegisterSourceRequest.decode(body).command(request.user, "verify" in form)
        source = await ui_of(request).use_case("register_source")(command)
    except DomainError as exc:
        return _new_form(request, source_type, form, exc)
    return Redirect(f"{SOURCES}/{source.id}", status_code=303)


def _edit_form(request: UiRequest, source: Source) -> dict[str, Any]:
    form = {
        "name": source.name.value,
        "description": source.description,
        "tags": ", ".join(source.tags),
        "version": str(source.version),
    }
    for name, value in source.connection.items():
        form[forms.CONNECTION + name] = forms.shown(value)
    return form


@get("/sources/{source_id:str}/edit", opt={"scope": UpdateSource.required_scope})
async def edit_page(request: UiRequest, source_id: FromPath[str]) -> Template:
    source = await source_of(request, source_id)
    return _form_page(
        request,
        "edit.html",
        _edit_form(request, source),
        None,
        source=source,
        fields=_fields(request, source.source_type),
    )


@post("/sources/{source_id:str}/edit", opt={"scope": UpdateSource.required_scope}, status_code=303)
async def edit(request: UiRequest, source_id: FromPath[str]) -> Template | Redirect:
    source = await source_of(request, source_id)
    fields = _fields(request, source.source_type)
    form = dict(await request.form())
    try:
        condition = parse_if_match(f'"{form.get("version", "")}"')
        body = forms.patch_body(fields, form)
        command = update_command(request.user, source.id, body, condition, "verify" in form)
        await ui_of(request).use_case("update_source")(command)
    except DomainError as exc:
        return _form_page(request, "edit.html", form, exc, source=source, fields=fields)
    return Redirect(f"{SOURCES}/{source.id}", status_code=303)


@get("/sources/{source_id:str}/delete", opt={"scope": DeleteSource.required_scope})
async def delete_page(request: UiRequest, source_id: FromPath[str]) -> Template:
    source = await source_of(request, source_id)
    return _form_page(request, "delete.html", {"version": str(source.version)}, None, source=source)


@post(
    "/sources/{source_id:str}/delete", opt={"scope": DeleteSource.required_scope}, status_code=303
)
async def delete(request: UiRequest, source_id: FromPath[str]) -> Template | Redirect:
    source = await source_of(request, source_id)
    form = dict(await request.form())
    try:
        condition = parse_if_match(f'"{form.get("version", "")}"')
        command = DeleteSourceCommand(request.user, source.id, condition)
        await ui_of(request).use_case("delete_source")(command)
    except DomainError as exc:
        return _form_page(request, "delete.html", form, exc, source=source)
    return Redirect(f"{SOURCES}?deleted=true", status_code=303)


HANDLERS = [
    sources_page,
    register_page,
    register,
    source_page,
    test_source,
    edit_page,
    edit,
    delete_page,
    delete,
]
