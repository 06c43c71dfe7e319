"""The catalogue of connectors: which source types this server can register, and how."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from application.ports import Connector, ConnectorRegistry
from application.sources import require
from domain.connections import ConnectorLoadFailure
from domain.keys import Principal, Scope


@attrs.frozen
class ConnectorCatalog:
    """The connectors loaded, sorted by type, and the plug-ins that failed to load."""

    connectors: Sequence[Connector]
    failures: Sequence[ConnectorLoadFailure]


@attrs.frozen
class ListConnectors:
    """Every source type this server can register, with its connection's fields."""

    required_scope = Scope.READ

    _connectors: ConnectorRegistry

    async def __call__(self, actor: Principal) -> ConnectorCatalog:
        require(actor, self.required_scope)
        registry = self._connectors
        return ConnectorCatalog(
            connectors=[registry.get(t) for t in registry.types()],
            failures=tuple(registry.failures()),
        )
