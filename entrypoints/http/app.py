"""The application factory: a Litestar app over a container."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import anyio
from dependency_injector.providers import Provider
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware

from domain.errors import StoreUnavailable
from entrypoints import metrics
from entrypoints.container import Container
from entrypoints.http.auth import UNAUTHENTICATED_PATHS, BearerAuthMiddleware, PrincipalCache
from entrypoints.http.bodies import TdbRequest
from entrypoints.http.events import EventsController
from entrypoints.http.health import healthz, readyz
from entrypoints.http.observability import (
    RequestObservability,
    Scrape,
    StoreGauges,
    metrics_endpoint,
)
from entrypoints.http.openapi import RegisterBodySchema, openapi_config
from entrypoints.http.problems import EXCEPTION_HANDLERS
from entrypoints.http.reads import ReadRunner
from entrypoints.http.sources import SourcesController
from entrypoints.logs import events

MAX_BODY_BYTES = 64 * 1024

# The use cases handlers may ask for, by parameter name.
USE_CASES = (
    "register_source",
    "list_sources",
    "get_source",
    "inspect_schema",
    "schema_history",
    "delete_source",
    "update_source",
    "check_source_connection",
    "check_new_connection",
    "list_events",
    "check_readiness",
)


def _call(provider: Provider[Any]) -> Callable[[], Any]:
    # Litestar cannot introspect dependency-injector's Cython providers: hand it a plain function.
    def provide() -> Any:
        return provider()

    return provide


def _start(container: Container, gauges: StoreGauges | None) -> None:
    # The secret key loads now, so that a bad one fails the start rather than the first request.
    container.cipher()
    try:
        applied = container.upgrade_store()()
    except StoreUnavailable as exc:
        # A worker (re)started while the store is down must still serve: 503 until it is back.
        # `tdb serve` migrated the store before starting any worker.
        events.warning(
            "store_unavailable_at_start",
            reason=type(exc.__cause__ or exc).__name__,
            detail="requests get 503 until the store answers",
        )
    else:
        if applied:
            events.info("migrations_applied", versions=applied)
    if gauges is not None:
        gauges.start()


def _stop(container: Container, gauges: StoreGauges | None) -> None:
    if gauges is not None:
        gauges.stop()
    # Only the resources in use were initialised; only those are shut down.
    container.shutdown_resources()


def _scrape(container: Container) -> Scrape:
    count_sources = container.count_sources

    def refresh() -> None:
        # In an outage the gauge keeps its last value; the outage has its own log line.
        with contextlib.suppress(StoreUnavailable):
            metrics.SOURCES.set(count_sources()())

    return Scrape(refresh)


def create_app(container: Container) -> Litestar:
    """A Litestar app serving the Sources API from this container's use cases."""
    settings = container.settings()
    handlers: list[Any] = [SourcesController, EventsController, healthz, readyz]
    gauges = None
    if settings.metrics:
        handlers.append(metrics_endpoint)
        gauges = StoreGauges(lambda: container.store_usage()())
    app = Litestar(
        route_handlers=handlers,
        dependencies={
            name: Provide(_call(getattr(container, name)), sync_to_thread=False)
            for name in USE_CASES
        },
        middleware=[
            DefineMiddleware(
                BearerAuthMiddleware,
                authenticate=_call(container.authenticate),
                cache=PrincipalCache(settings.auth_cache_ttl),
                exclude=UNAUTHENTICATED_PATHS,
            )
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=TdbRequest,
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=openapi_config(),
        plugins=[RegisterBodySchema(container.connectors())],
        on_startup=[lambda: _start(container, gauges)],
        on_shutdown=[lambda: _stop(container, gauges)],
        state=State(
            {
                "scrape": _scrape(container),
                "reads": ReadRunner(inline=settings.store_kind in ("memory", "sqlite")),
                "inspect_limiter": anyio.CapacityLimiter(settings.inspect_concurrency),
                # The spec's bound: a schema answer within the connect timeout plus a second.
                "inspect_deadline": settings.connect_timeout + 0.75,
            }
        ),
        logging_config=None,
    )
    # Outside Litestar's router, so that requests matching no route are seen too.
    app.asgi_handler = RequestObservability(
        app.asgi_handler, log_requests=settings.access_log, count_requests=settings.metrics
    )
    return app
