"""Use cases wired to in-memory adapters and fakes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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
from domain.events import EventFilter
from domain.sources import Column, SourceFilter
from tests.fakes import CountingIds, FakeConnector, SteppingClock
from tests.helpers import Synced


@attrs.define
class World:
    """Everything a use case may need, all in memory; the stores through `Synced` (a test's own
    call gives the answer, a use case awaits it)."""

    sources: Any
    history: Any
    keys: Any
    events: Any
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
        sources=Synced(sources),
        history=Synced(MemorySnapshotRepository(sources)),
        keys=Synced(MemoryApiKeyRepository(events)),
        events=Synced(events),
        connector=connector,
        connectors=StaticConnectorRegistry([connector]),
        cipher=AesGcmCipher(generate_key()),
        clock=SteppingClock(),
        ids=CountingIds(),
    )


def outcome(world: World, act: Callable[[], object]) -> object:
    """What an action gave (its answer, or the error's type and words) and left behind (the
    sources with their secrets decrypted, the events, and the connections forgotten)."""
    try:
        given: object = act()
    except Exception as exc:
        given = (type(exc), str(exc), getattr(exc, "errors", None))
    stored = [
        world.sources.get(s.id).connection for s in world.sources.list(SourceFilter()).sources
    ]
    events = list(world.events.list(EventFilter()).events)
    forgotten = [in_clear(world, c) for c in world.connector.forgotten]
    return given, [in_clear(world, c) for c in stored], events, forgotten


def in_clear(world: World, connection: Mapping[str, Any]) -> dict[str, Any]:
    """A connection of the fake connector's as stored, its password decrypted."""
    return {k: world.cipher.decrypt(v) if k == "password" else v for k, v in connection.items()}
