"""The connectors built into this process, by source type: the one list of types that exist."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import MappingProxyType

from application.ports import Connector
from domain.connections import ConnectorLoadFailure
from domain.errors import UnknownSourceType


class StaticConnectorRegistry:
    """A read-only map of source type to connector; adding a type is adding one connector to it."""

    def __init__(
        self, connectors: Iterable[Connector], failures: Iterable[ConnectorLoadFailure] = ()
    ) -> None:
        by_type: dict[str, Connector] = {}
        for connector in connectors:
            if connector.source_type in by_type:
                raise ValueError(f"two connectors claim source type {connector.source_type!r}")
            by_type[connector.source_type] = connector
        self._by_type = MappingProxyType(by_type)
        self._failures = tuple(failures)

    def get(self, source_type: str) -> Connector:
        # A client may send any JSON value as the type; only a registered string names a connector.
        connector = self._by_type.get(source_type) if isinstance(source_type, str) else None
        if connector is None:
            raise UnknownSourceType(source_type, self._by_type)
        return connector

    def types(self) -> Sequence[str]:
        return sorted(self._by_type)

    def failures(self) -> Sequence[ConnectorLoadFailure]:
        return self._failures
