"""Connectors whose schema inspections are timed and reported, for metrics and logs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from application.ports import Connector, ConnectorRegistry
from domain.errors import BackendUnavailable
from domain.sources import Column

# (source_type, reason or None when it answered, seconds)
InspectionObserver = Callable[[str, str | None, float], None]


class ObservedConnector:
    """One connector; every `inspect` is reported to the observer, on the thread it ran on."""

    def __init__(self, connector: Connector, observe: InspectionObserver) -> None:
        self._connector = connector
        self._observe = observe
        self.source_type = connector.source_type
        self.fields = connector.fields

    def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        return self._connector.validate(connection)

    def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        start = time.perf_counter()
        try:
            columns = self._connector.inspect(connection)
        except BackendUnavailable as exc:
            self._observe(self.source_type, exc.reason, time.perf_counter() - start)
            raise
        except Exception:
            self._observe(self.source_type, "error", time.perf_counter() - start)
            raise
        self._observe(self.source_type, None, time.perf_counter() - start)
        return columns

    def forget(self, connection: Mapping[str, Any]) -> None:
        self._connector.forget(connection)

    def __getattr__(self, name: str) -> Any:
        # Whatever else the connector offers, unobserved.
        return getattr(self._connector, name)


class ObservedConnectors:
    """A connector registry whose connectors report their inspections to `observe`."""

    def __init__(self, connectors: ConnectorRegistry, observe: InspectionObserver) -> None:
        self._connectors = connectors
        self._observed = {
            t: ObservedConnector(connectors.get(t), observe) for t in connectors.types()
        }

    def get(self, source_type: str) -> Connector:
        observed = self._observed.get(source_type) if isinstance(source_type, str) else None
        if observed is None:
            return self._connectors.get(source_type)  # raises UnknownSourceType
        return observed

    def types(self) -> Sequence[str]:
        return self._connectors.types()
