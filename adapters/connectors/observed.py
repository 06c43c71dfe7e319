"""Connectors whose schema inspections and connection tests are timed and reported."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from application.ports import Connector, ConnectorRegistry
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

    def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        return self._observed("inspection", self._connector.inspect, connection)

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
        except BackendUnavailable as exc:
            self._observe(operation, self.source_type, exc.reason, time.perf_counter() - start)
            raise
        except Exception:
            self._observe(operation, self.source_type, "error", time.perf_counter() - start)
            raise
        self._observe(operation, self.source_type, None, time.perf_counter() - start)
        return result


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
