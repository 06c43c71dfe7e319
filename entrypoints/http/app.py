"""The application factory: a Litestar app over a container."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
from dependency_injector.providers import Provider
from litestar import Litestar
from litestar.datastructures import State
from litestar.routes import HTTPRoute

from application.keys import PrincipalCache
from domain.errors import StoreUnavailable
from entrypoints import metrics
from entrypoints.container import Container
from entrypoints.http.auth import UNAUTHENTICATED_PATHS, BearerAuth
from entrypoints.http.bodies import TdbRequest
from entrypoints.http.columns import ColumnsController
from entrypoints.http.connectors import list_connectors
from entrypoints.http.events import EventsController
from entrypoints.http.health import healthz, readyz
from entrypoints.http.keys import KeysController
from entrypoints.http.mcp import McpEndpoint
from entrypoints.http.observability import (
    RequestObservability,
    Scrape,
    StoreGauges,
    metrics_endpoint,
)
from entrypoints.http.openapi import Polisher, SourceBodySchema, openapi_config
from entrypoints.http.pacing import paced
from entrypoints.http.problems import CLIENT_GONE, EXCEPTION_HANDLERS
from entrypoints.http.sources import ListingCache, SourcesController
from entrypoints.http.use_cases import UseCases
from entrypoints.http.watches import SourceWatchController, WatchesController, WatchUseCases
from entrypoints.http.webhooks import WebhooksController
from entrypoints.runtime.key_uses import KeyUseWriter
from entrypoints.runtime.watching import WatchScheduler, scheduler_for
from entrypoints.startup import start_worker, stop_worker
from entrypoints.ui import ui_router, ui_templates

MAX_BODY_BYTES = 64 * 1024
# Full listings read and encoded at once per process, on threads (more only queue for the GIL).
LISTINGS_AT_ONCE = 2


def _call(provider: Provider[Any]) -> Callable[[], Any]:
    # Litestar cannot introspect dependency-injector's Cython providers: hand it a plain function.
    def provide() -> Any:
        return provider()

    return provide


async def _start(
    container: Container,
    gauges: StoreGauges | None,
    watcher: WatchScheduler | None,
    uses: KeyUseWriter,
) -> None:
    await start_worker(container)
    if gauges is not None:
        gauges.start()
    if watcher is not None:
        watcher.start()
    uses.start()


async def _stop(
    container: Container,
    gauges: StoreGauges | None,
    watcher: WatchScheduler | None,
    uses: KeyUseWriter,
) -> None:
    if watcher is not None:
        await watcher.stop()
    if gauges is not None:
        gauges.stop()
    try:
        await uses.stop()  # before the store lets go of this loop: the last uses are written
    finally:
        await stop_worker(container)


def _scrape(container: Container) -> Scrape:
    count_sources = container.count_sources
    count_overdue = container.count_overdue_checks
    count_pending = container.count_pending_deliveries

    async def refresh() -> None:
        # In an outage the gauge keeps its last value; the outage has its own log line.
        with contextlib.suppress(StoreUnavailable):
            metrics.SOURCES.set(await count_sources()())
            metrics.WATCHES_OVERDUE.set(await count_overdue()())
            metrics.WEBHOOK_PENDING.set(await count_pending()())

    return Scrape(refresh)


# Methods whose requests carry a body: a client may leave while sending it.
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class TdbApp(Litestar):
    """Litestar, plus HEAD wherever GET is, OPTIONS that names every method of the path, a
    mark on requests whose client left before its body was read, and big bodies sent in slices
    that leave the event loop free between them (`pacing.py`).

    Litestar routes HEAD only to `@head` handlers (405 elsewhere) and builds each route's
    OPTIONS answer before the route's methods are merged, so `Allow` lacks some of them.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            send = paced(send)
            method = scope["method"]
            if method == "HEAD":
                # A GET in every respect (auth, scopes, headers, Content-Length) but the body.
                scope = {**scope, "method": "GET"}
                send = _without_body(send)
            elif method == "OPTIONS":
                send = self._with_allow(scope, send)
            elif method in _WITH_BODY:
                receive = _watching_disconnect(scope, receive)
        await super().__call__(scope, receive, send)

    def _with_allow(self, scope: Any, send: Any) -> Any:
        async def sending(message: Any) -> None:
            template = scope.get("path_template")
            if message["type"] == "http.response.start" and template in self._allowed:
                allow = self._allowed[template].encode()
                message["headers"] = [
                    (k, allow if k.lower() == b"allow" else v) for k, v in message["headers"]
                ]
            await send(message)

        return sending

    @property
    def _allowed(self) -> dict[str, str]:
        allowed: dict[str, str] | None = getattr(self, "_allowed_by_path", None)
        if allowed is None:
            allowed = {}
            for route in self.routes:
                if isinstance(route, HTTPRoute):
                    methods = set(route.methods) | ({"HEAD"} if "GET" in route.methods else set())
                    # The router's `path_template` drops the parameters' types.
                    template = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.path)
                    allowed[template] = ", ".join(sorted(methods))
            self._allowed_by_path = allowed
        return allowed


def _without_body(send: Any) -> Any:
    async def sending(message: Any) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return sending


def _watching_disconnect(scope: Any, receive: Any) -> Any:
    async def receiving() -> Any:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope[CLIENT_GONE] = True
        return message

    return receiving


ROUTES = (
    SourcesController,
    EventsController,
    ColumnsController,
    SourceWatchController,
    WatchesController,
    KeysController,
    WebhooksController,
    list_connectors,
    healthz,
    readyz,
)
"""The API's routes every app serves; metrics, MCP and the UI are added as settings say."""


def create_app(container: Container) -> Litestar:
    """A Litestar app serving the Sources API from this container's use cases."""
    settings = container.settings()
    handlers: list[Any] = [*ROUTES]
    gauges = None
    if settings.metrics:
        handlers.append(metrics_endpoint)
        gauges = StoreGauges(lambda: container.store_usage()())
    if settings.ui:
        # The web UI: pages of its own under /ui/, behind its own session check.
        handlers.append(ui_router(container))
    body_schema = SourceBodySchema(container.connectors())
    auth = BearerAuth(
        authenticate=_call(container.authenticate),
        cache=PrincipalCache(settings.auth_cache_ttl),
        exclude=UNAUTHENTICATED_PATHS,
        uses=container.key_uses(),
    )
    lifespan = []
    if settings.mcp:
        endpoint = McpEndpoint(container, auth)
        handlers.append(endpoint.handler())
        lifespan.append(endpoint.lifespan)
    watcher = scheduler_for(container)  # runs due checks beside the handlers (TDB_WATCH)
    uses = KeyUseWriter(
        container.key_uses(), settings.key_use_flush, written=metrics.KEY_USE_WRITES.inc
    )
    app = TdbApp(
        route_handlers=handlers,
        before_request=auth,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=TdbRequest,
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=openapi_config(Polisher()),
        plugins=[body_schema],
        template_config=ui_templates() if settings.ui else None,
        on_startup=[partial(_start, container, gauges, watcher, uses)],
        on_shutdown=[partial(_stop, container, gauges, watcher, uses)],
        state=State(
            {
                "scrape": _scrape(container),
                "use_cases": UseCases(container),
                "watch_use_cases": WatchUseCases(container),
                "listing_limiter": anyio.CapacityLimiter(LISTINGS_AT_ONCE),
                "listings": ListingCache(),
            }
        ),
        logging_config=None,
    )
    # Outside Litestar's router, so that requests matching no route are seen too.
    app.asgi_handler = RequestObservability(
        app.asgi_handler, log_requests=settings.access_log, count_requests=settings.metrics
    )
    return app
