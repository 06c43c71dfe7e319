"""The web UI's router and templates, which the HTTP app mounts at `/ui/` (unless
`TDB_UI=off`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from litestar import Router, get
from litestar.datastructures import ResponseHeader
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from entrypoints.container import Container
from entrypoints.presenters import api_timestamp
from entrypoints.ui import (
    columns,
    events,
    forms,
    history,
    keys,
    signin,
    sources,
    watches,
    webhooks,
)
from entrypoints.ui.pages import EXCEPTION_HANDLERS, UI_PATH, Ui, UiAuth

HERE = Path(__file__).parent
# Every page: nothing from another host, no inline script or style, never in a frame, never
# kept by a cache, no referrer to another site.
SECURITY_HEADERS = [
    ResponseHeader(
        name="Content-Security-Policy",
        value="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="Cache-Control", value="no-store"),
]


@get("/", include_in_schema=False)
async def home() -> Redirect:
    return Redirect(f"{UI_PATH}/sources", status_code=303)


def ui_router(container: Container) -> Router:
    """Every page of the UI, behind its session check, and its stylesheet and script."""
    static = create_static_files_router(
        path="/static", directories=[HERE / "static"], include_in_schema=False, name="ui-static"
    )
    handlers: list[Any] = [
        home,
        *signin.HANDLERS,
        *sources.HANDLERS,
        *history.HANDLERS,
        *events.HANDLERS,
        *watches.HANDLERS,
        *columns.HANDLERS,
        *webhooks.HANDLERS,
        *keys.HANDLERS,
        static,
    ]
    return Router(
        path=UI_PATH,
        route_handlers=handlers,
        before_request=UiAuth(Ui(container)),
        exception_handlers=EXCEPTION_HANDLERS,
        response_headers=SECURITY_HEADERS,
        include_in_schema=False,
    )


def _when(value: Any) -> str:
    return api_timestamp(value)


def ui_templates() -> TemplateConfig[JinjaTemplateEngine]:
    """The UI's Jinja2 templates: autoescaped, and an undefined name is an error, not blank."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["when"] = _when
    environment.filters["shown"] = forms.shown
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))
