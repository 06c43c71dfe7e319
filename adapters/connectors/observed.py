"""Connectors whose backend calls are bounded (how many at once, how long) and reported."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from application.ports import Connector, ConnectorRegistry
from domain.connections import ConnectorLoadFailure
from domain.errors import BackendUnavailable
from domain.sources import Column

T = TypeVar("T")

# (operation: "inspection" or "connection_test", source_type, reason or None if it answered,
# seconds)
BackendObserver = Callable[[str, str, str | None, float], None]


class BackendBounds:
    """At most `at_once` inspections and connection tests at once per event loop, each over
    within `deadline` seconds (its wait for a turn included), else `timeout`.

    Every entrypoint that calls a connector through the container gets these bounds: a slow or
    dead backend can neither hold a caller past the deadline nor crowd out other work.
    """

    def __init__(self, at_once: int, deadline: float | None = None) -> None:
        self._at_once = max(1, at_once)
        self._deadline = deadline
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        loop = asyncio.get_running_loop()
        turns = self._turns.get(loop)
        if turns is None:
            turns = self._turns[loop] = asyncio.Semaphore(self._at_once)
        try:
            async with asyncio.timeout(self._deadline), turns:
                return await call()
        except TimeoutError:
            raise BackendUnavailable("timeout", "The source did not answer in time.") from None


UNBOUNDED = BackendBounds(at_once=1 << 30)


class ObservedConnector:
    """One connector; every `inspect` and `check` runs within `bounds` and is reported."""

    def __init__(
        self, connector: Connector, observe: BackendObserver, bounds: BackendBounds = UNBOUNDED
    ) -> None:
        self._connector = connector
        self._observe = observe
        self._bounds = bounds
        self.source_type = connector.source_type
        self.title = connector.title
        self.origin = connector.origin
        self.package = connector.package
        self.fields = connector.fields

    async def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        return await self._connector.validate(connection)

    async def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        return await self._observed("inspection", self._connector.inspect, connection)

    async def check(self, connection: Mapping[str, Any]) -> None:
        await self._observed("connection_test", self._connector.check, connection)

    async def forget(self, connection: Mapping[str, Any]) -> None:
        await self._connector.forget(connection)

    async def _observed(
        self,
        operation: str,
        call: Callable[[Mapping[str, Any]], Awaitable[T]],
        connection: Mapping[str, Any],
    ) -> T:
        start = time.perf_counter()
        try:
            result = await self._bounds.run(lambda: call(connection))
        except Exception as exc:
            self._report(operation, exc, start)
            raise
        self._report(operation, None, start)
        return result

    def _report(self, operation: str, failure: Exception | None, start: float) -> None:
        """Observe one call that began at `start`: it answered, or failed with `failure`."""
        if failure is None:
            reason = None
        elif isinstance(failure, BackendUnavailable):
            reason = failure.reason
        else:
            reason = "error"
        self._observe(operation, self.source_type, reason, time.perf_counter() - start)


class ObservedConnectorRegistry:
    """A connector registry whose connectors are bounded by `bounds` and report their backend
    calls to `observe`."""

    def __init__(
        self,
        connectors: ConnectorRegistry,
        observe: BackendObserver,
        bounds: BackendBounds = UNBOUNDED,
    ) -> None:
        self._connectors = connectors
        self._observed = {
            source_type: ObservedConnector(connectors.get(source_type), observe, bounds)
            for source_type in connectors.types()
        }

    def get(self, source_type: str) -> Connector:
        observed = self._observed.get(source_type) if isinstance(source_type, str) else None
        if observed is None:
            return self._connectors.get(source_type)  # raises UnknownSourceType
        return observed

    def types(self) -> Sequence[str]:
        return self._connectors.types()

    def failures(self) -> Sequence[ConnectorLoadFailure]:
        return self._connectors.failures()
