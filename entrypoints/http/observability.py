"""Every request's id, log line and metrics, and the `/metrics` scrape.

The request wrapper sits outside Litestar's router, so that it sees every request, those that
match no route included, and every answer, problem responses included.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from random import getrandbits
from typing import Any

import anyio
import anyio.to_thread
from litestar import Request, Response, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints import metrics
from entrypoints.logs import REQUEST_ID, events, log_request

REQUEST_ID_HEADER = b"x-request-id"
# 1-128 visible ASCII characters; anything else is replaced, never echoed.
_VALID_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PARAMETER_TYPE = re.compile(r":[a-z]+}")


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's `X-Request-ID` if it is valid, else a new one."""
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER:
            if _VALID_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    # An id to find a request's lines by, not a secret: 128 bits of the process's generator
    # (seeded from the OS at start and again in a forked child), without a system call.
    return f"{getrandbits(128):032x}"


class RequestObservability:
    """Gives each request an id (echoed as `X-Request-ID`), a log line and its metrics."""

    def __init__(self, app: ASGIApp, log_requests: bool, count_requests: bool) -> None:
        self._app = app
        self._log = log_requests
        self._count = count_requests
        self._routes: dict[str, str] = {}
        self._series: dict[tuple[str, str, int], metrics.RequestSeries] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the lifespan; tdb serves no websockets
            await self._app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = request_id_of(scope["headers"])
        echoed = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        token = REQUEST_ID.set(request_id)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        except Exception:
            events.exception("unhandled_error")
            raise
        finally:
            self._done(scope, status, time.perf_counter() - start)
            REQUEST_ID.reset(token)

    def _done(self, scope: Scope, status: int, seconds: float) -> None:
        route = self._route(scope.get("path_template"))
        method: str = scope["method"]  # type: ignore[typeddict-item]
        if method not in _METHODS:
            method = "OTHER"  # a label: no client may invent its values
        if self._count:
            series = self._series.get((route, method, status))
            if series is None:
                series = self._series[(route, method, status)] = metrics.RequestSeries(
                    route, method, str(status)
                )
            series.add(seconds)
        if self._log:
            user = scope.get("user")
            client = scope.get("client")
            log_request(
                method=method,
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 3),
                actor=user.identity if user is not None else None,
                client=client[0] if client else None,
            )

    def _route(self, template: str | None) -> str:
        # A path that matched no route is not a label: it may hold anything, ids included.
        if not template:
            return "unmatched"
        route = self._routes.get(template)
        if route is None:
            route = self._routes[template] = _PARAMETER_TYPE.sub("}", template)
        return route


class Scrape:
    """The text of a scrape, made at most once per `max_age` seconds, one at a time.

    Any number of scrapers at once share one collection (it reads every worker's figures, on a
    thread), so scraping neither takes the threads that requests run on nor holds up the event
    loop. `refresh` brings this worker's own gauges up to date first.
    """

    def __init__(self, refresh: Callable[[], Awaitable[None]], max_age: float = 1.0) -> None:
        self._refresh = refresh
        self._max_age = max_age
        self._lock = anyio.Lock()
        self._text = b""
        self._made = -float("inf")

    async def text(self) -> bytes:
        if time.monotonic() - self._made < self._max_age:
            return self._text
        async with self._lock:
            if time.monotonic() - self._made >= self._max_age:
                await self._refresh()
                self._text = await anyio.to_thread.run_sync(metrics.exposition)
                self._made = time.monotonic()
        return self._text


@get(
    "/metrics",
    security=[{}],
    tags=["ops"],
    summary="Prometheus metrics of every worker",
    media_type=metrics.MEDIA_TYPE,
    include_in_schema=True,
)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    scrape: Scrape = request.app.state.scrape
    return Response(await scrape.text(), media_type=metrics.MEDIA_TYPE)


class StoreGauges:
    """Keeps the store pool gauges of this worker current, every `interval` seconds."""

    def __init__(self, usage: Callable[[], tuple[int, int]], interval: float = 2.0) -> None:
        self._usage = usage
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self) -> None:
        size, in_use = self._usage()
        metrics.STORE_POOL_SIZE.set(size)
        metrics.STORE_POOL_IN_USE.set(in_use)

    def start(self) -> None:
        self.update()
        self._thread = threading.Thread(target=self._run, name="tdb-store-gauges", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.update()
