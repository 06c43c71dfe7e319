"""RecentHeads: the newest snapshot remembered briefly, changes still recorded once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from adapters.storage.recent_heads import RecentHeads
from application.history import InspectSchema, InspectSchemaQuery
from domain.history import SchemaSnapshot, SnapshotHead, fingerprint
from domain.sources import Column
from tests.builders import READER, register
from tests.helpers import Synced
from tests.unit.conftest import World

T0 = datetime(2026, 5, 22, 9, 0, tzinfo=UTC)
A = (Column("id", "integer", False),)
B = (Column("id", "bigint", False),)
C = (Column("id", "text", False),)


class ManualClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def snapshot(source_id: UUID, sequence: int, columns: tuple[Column, ...]) -> SchemaSnapshot:
    return SchemaSnapshot(source_id, sequence, fingerprint(columns), columns, T0)


def recent(world: World, clock: ManualClock, **options: int) -> Any:
    """The heads through `Synced`: a test's call gives the answer, a use case awaits it."""
    return Synced(RecentHeads(world.history, ttl=1.0, monotonic=clock, **options))


def test_a_head_is_remembered_for_the_ttl_then_read_again(world: World) -> None:
    clock = ManualClock()
    heads = recent(world, clock)
    source = register(world)
    assert heads.append(snapshot(source.id, 1, A))
    assert heads.head(source.id) == SnapshotHead(1, fingerprint(A))
    # Another process moves the store on: this one sees it once its memory is a second old.
    assert world.history.append(snapshot(source.id, 2, B))
    clock.now += 0.9
    assert heads.head(source.id) == SnapshotHead(1, fingerprint(A))
    clock.now += 0.2
    assert heads.head(source.id) == SnapshotHead(2, fingerprint(B))


def test_a_failed_append_forgets_and_latest_remembers(world: World) -> None:
    clock = ManualClock()
    heads = recent(world, clock)
    source = register(world)
    assert heads.head(source.id) is None
    assert world.history.append(snapshot(source.id, 1, A))
    assert heads.head(source.id) is None  # remembered: no snapshot yet
    assert not heads.append(snapshot(source.id, 1, B))
    assert heads.head(source.id) == SnapshotHead(1, fingerprint(A))
    assert world.history.append(snapshot(source.id, 2, B))
    assert heads.latest(source.id) == snapshot(source.id, 2, B)
    assert heads.head(source.id) == SnapshotHead(2, fingerprint(B))
    assert list(heads.newest_first(source.id, 5)) == list(world.history.newest_first(source.id, 5))


def test_only_the_most_recently_used_sources_are_remembered(world: World) -> None:
    clock = ManualClock()
    heads = recent(world, clock, max_sources=2)
    first, second, third = (register(world, name=n) for n in ("one", "two", "three"))
    for source in (first, second, third):
        assert heads.head(source.id) is None
    for source in (first, third):
        assert world.history.append(snapshot(source.id, 1, A))
    assert heads.head(first.id) == SnapshotHead(1, fingerprint(A))  # forgotten, read again
    assert heads.head(third.id) is None  # still remembered


def test_a_stale_head_delays_a_change_and_never_doubles_it(world: World) -> None:
    clock = ManualClock()
    here, there = recent(world, clock), recent(world, clock)

    def inspected(history: Any, columns: tuple[Column, ...]) -> bool:
        """Whether an inspection that sees these columns stores them."""
        world.connector.tables["orders"] = columns
        inspect = Synced(
            InspectSchema(
                world.sources, world.connectors, world.cipher, world.clock, history, world.ids
            )
        )
        return inspect(InspectSchemaQuery(READER, source.id)).recorded is not None

    source = register(world)
    assert inspected(here, A)
    assert inspected(there, B)
    # `here` believes A is the newest: its attempt to store C fails and teaches it B...
    assert not inspected(here, C)
    # ... so the next inspection stores C.
    assert inspected(here, C)
    # `there` believes B is the newest: B again looks unchanged until its memory expires.
    assert not inspected(there, B)
    clock.now += 1.5
    assert inspected(there, B)
    assert not inspected(there, B)
    assert not inspected(here, B)
    printed = [e.fingerprint for e in world.history.newest_first(source.id, 10)]
    assert printed == [fingerprint(c) for c in (B, C, B, A)]
