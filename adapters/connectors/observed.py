"""Connectors whose schema inspections and connection tests are timed and reported."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from application.ports import Connector, ConnectorRegistry, Offload
from domain.errors import BackendUnavailable
from domain.sources import Column

T = TypeVar("T")

# (operation: "inspection" or "connection_test", source_type, reason or None if it answered,
# seconds)
BackendObserver = Callable[[str, str, str | None, float], None]


class ObservedConnector:
    """One connector; every `inspect` and `check` is reported, on the thread it ran on."""

    def __init__(self, connector: Connector, observe: BackendObserver) -> None:
        self._connector = connector
        self._observe = observe
        self.source_type = connector.source_type
        self.fields = connector.fields

    def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        return self._connector.validate(connection)

    async def validate_async(
        self, connection: Mapping[str, Any], offload: Offload
    ) -> dict[str, Any]:
        return await self._connector.validate_async(connection, offload)

    def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        return self._observed("inspection", self._connector.inspect, connection)

    async def inspect_async(
        self, connection: Mapping[str, Any], offload: Offload
    ) -> Sequence[Column]:
        start = time.perf_counter()
        try:
            result = await self._connector.inspect_async(connection, offload)
        except Exception as exc:
            self._report("inspection", exc, start)
            raise
        self._report("inspection", None, start)
        return result

    def check(self, connection: Mapping[str, Any]) -> None:
        self._observed("connection_test", self._connector.check, connection)

    def forget(self, connection: Mapping[str, Any]) -> None:
        self._connector.forget(connection)

    def _observed(
        self, operation: str, call: Callable[[Mapping[str, Any]], T], connection: Mapping[str, Any]
    ) -> T:
        start = time.perf_counter()
        try:
            result = call(connection)
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
    """A connector registry whose connectors report their backend calls to `observe`."""

    def __init__(self, connectors: ConnectorRegistry, observe: BackendObserver) -> None:
        self._connectors = connectors
        self._observed = {
            source_type: ObservedConnector(connectors.get(source_type), observe)
            for source_type in connectors.types()
        }

    def get(self, source_type: str) -> Connector:
        observed = self._observed.get(source_type) if isinstance(source_type, str) else None
        if observed is None:
            return self._connectors.get(source_type)  # raises UnknownSourceType
        return observed

    def types(self) -> Sequence[str]:
        return self._connectors.types()
