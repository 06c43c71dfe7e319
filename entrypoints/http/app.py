"""The application factory: a Litestar app over a container."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
from dependency_injector.providers import Provider
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware

from domain.errors import StoreUnavailable
from entrypoints.container import Container
from entrypoints.http.auth import UNAUTHENTICATED_PATHS, BearerAuthMiddleware, PrincipalCache
from entrypoints.http.bodies import TdbRequest
from entrypoints.http.events import EventsController
from entrypoints.http.health import healthz, readyz
from entrypoints.http.openapi import RegisterBodySchema, openapi_config
from entrypoints.http.problems import EXCEPTION_HANDLERS
from entrypoints.http.reads import ReadRunner
from entrypoints.http.sources import SourcesController

MAX_BODY_BYTES = 64 * 1024
log = logging.getLogger("tdb")

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


def _start(container: Container) -> None:
    # The secret key loads now, so that a bad one fails the start rather than the first request.
    container.cipher()
    try:
        container.upgrade_store()()
    except StoreUnavailable:
        # A worker (re)started while the store is down must still serve: 503 until it is back.
        # `tdb serve` migrated the store before starting any worker.
        log.warning("the store is unavailable at start; requests get 503 until it answers")


def create_app(container: Container) -> Litestar:
    """A Litestar app serving the Sources API from this container's use cases."""
    settings = container.settings()
    return Litestar(
        route_handlers=[SourcesController, EventsController, healthz, readyz],
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
        on_startup=[lambda: _start(container)],
        # Only the resources in use were initialised; only those are shut down.
        on_shutdown=[lambda: container.shutdown_resources()],
        state=State(
            {
                "reads": ReadRunner(inline=settings.store_kind in ("memory", "sqlite")),
                "inspect_limiter": anyio.CapacityLimiter(settings.inspect_concurrency),
                # The spec's bound: a schema answer within the connect timeout plus a second.
                "inspect_deadline": settings.connect_timeout + 0.75,
            }
        ),
        logging_config=None,
    )
