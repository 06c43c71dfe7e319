"""Use cases wired to in-memory adapters and fakes."""

from __future__ import annotations

import attrs
import pytest

from adapters.connectors.registry import StaticConnectorRegistry
from adapters.crypto import AesGcmCipher, generate_key
from adapters.storage.memory import (
    MemoryApiKeyRepository,
    MemoryEventRepository,
    MemorySnapshotRepository,
    MemorySourceRepository,
)
from domain.sources import Column
from tests.fakes import CountingIds, FakeConnector, SteppingClock


@attrs.define
class World:
    """Everything a use case may need, all in memory."""

    sources: MemorySourceRepository
    history: MemorySnapshotRepository
    keys: MemoryApiKeyRepository
    events: MemoryEventRepository
    connector: FakeConnector
    connectors: StaticConnectorRegistry
    cipher: AesGcmCipher
    clock: SteppingClock
    ids: CountingIds


@pytest.fixture
def world() -> World:
    return new_world()


def new_world() -> World:
    """A world of its own: fresh stores, and ids and times counted from the start."""
    connector = FakeConnector(
        {"orders": [Column("id", "integer", False), Column("total", "numeric")]}
    )
    events = MemoryEventRepository()
    sources = MemorySourceRepository(events)
    return World(
        sources=sources,
        history=MemorySnapshotRepository(sources),
        keys=MemoryApiKeyRepository(events),
        events=events,
        connector=connector,
        connectors=StaticConnectorRegistry([connector]),
        cipher=AesGcmCipher(generate_key()),
        clock=SteppingClock(),
        ids=CountingIds(),
    )
