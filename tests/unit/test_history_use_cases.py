"""Inspections keep the schema history; the history reads back newest first, page by page."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from adapters.connectors.registry import StaticConnectorRegistry
from application.history import (
    GetSchemaHistory,
    InspectSchema,
    InspectSchemaQuery,
    SchemaHistoryQuery,
)
from domain.errors import BackendUnavailable, InvalidInput, PermissionDenied, SourceNotFound
from domain.events import Action, Event, EventFilter
from domain.history import ChangeKind, fingerprint
from domain.keys import Principal
from domain.sources import Column
from tests.builders import ADMIN, READER, register
from tests.helpers import Synced, run
from tests.unit.conftest import World

NOBODY = Principal("tdbk_nobody", frozenset())
A = (Column("id", "integer", False), Column("total", "numeric"))
B = (Column("id", "bigint", False), Column("total", "numeric"), Column("note", "text", True))


def inspect(world: World) -> Any:
    """The use case through `Synced`: a test's call gives the answer, a connector awaits it."""
    return Synced(
        InspectSchema(
            world.sources, world.connectors, world.cipher, world.clock, world.history, world.ids
        )
    )


def history(world: World, source_id: uuid.UUID, **query: Any) -> Any:
    use_case = GetSchemaHistory(world.sources, world.history)
    return run(use_case(SchemaHistoryQuery(READER, source_id, **query)))


def test_the_first_inspection_stores_a_snapshot_without_changes(world: World) -> None:
    source = register(world)
    schema = inspect(world)(InspectSchemaQuery(READER, source.id))
    assert schema.fingerprint == fingerprint(A)
    assert schema.recorded is not None
    assert schema.recorded.changes == ()
    (entry,) = history(world, source.id).entries
    assert entry.snapshot.columns == A
    assert entry.snapshot.observed_at == schema.inspected_at
    assert entry.changes == ()
    assert not entry.breaking


def test_unchanged_columns_store_nothing_and_changed_ones_store_one(world: World) -> None:
    source = register(world)
    query = InspectSchemaQuery(READER, source.id)
    inspect(world)(query)
    again = inspect(world)(query)
    assert again.recorded is None
    assert len(history(world, source.id).entries) == 1
    world.connector.tables["orders"] = B
    changed = inspect(world)(query)
    assert changed.recorded is not None
    assert changed.recorded.breaking
    assert [(c.column, c.change) for c in changed.recorded.changes] == [
        ("id", ChangeKind.TYPE_CHANGED),
        ("note", ChangeKind.ADDED),
    ]
    newest, oldest = history(world, source.id).entries
    assert newest.snapshot.columns == B
    assert newest.changes == changed.recorded.changes
    assert oldest.snapshot.columns == A


def test_a_failed_inspection_records_nothing(world: World) -> None:
    source = register(world)
    inspect(world)(InspectSchemaQuery(READER, source.id))
    del world.connector.tables["orders"]
    with pytest.raises(BackendUnavailable):
        inspect(world)(InspectSchemaQuery(READER, source.id))
    assert len(history(world, source.id).entries) == 1


class InterleavingConnector:
    """Sees `old` columns, but before it answers another inspection stores the newer ones."""

    source_type = "fake"
    title = "A fake table"
    origin = "builtin"
    package: str | None = None

    def __init__(self, world: World, source_id: uuid.UUID, old: Sequence[Column]) -> None:
        self.world = world
        self.fields = world.connector.fields
        self.source_id = source_id
        self.old = old

    async def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        return await self.world.connector.validate(connection)

    async def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        await inspect(self.world)(InspectSchemaQuery(READER, self.source_id))
        return self.old

    async def check(self, connection: Mapping[str, Any]) -> None:
        await self.world.connector.check(connection)

    async def forget(self, connection: Mapping[str, Any]) -> None:
        await self.world.connector.forget(connection)


def test_a_slow_inspection_cannot_bury_a_newer_one(world: World) -> None:
    source = register(world)
    inspect(world)(InspectSchemaQuery(READER, source.id))  # A
    world.connector.tables["orders"] = B
    slow = InspectSchema(
        world.sources,
        StaticConnectorRegistry([InterleavingConnector(world, source.id, A)]),
        world.cipher,
        world.clock,
        world.history,
        world.ids,
    )
    schema = run(slow(InspectSchemaQuery(READER, source.id)))
    assert schema.columns == A
    assert schema.recorded is None
    assert [e.snapshot.columns for e in history(world, source.id).entries] == [B, A]


def test_history_pages_newest_first(world: World) -> None:
    source = register(world)
    query = InspectSchemaQuery(READER, source.id)
    seen = []
    for width in range(1, 6):
        world.connector.tables["orders"] = [Column(f"c{i}", "text") for i in range(width)]
        seen.append(inspect(world)(query).fingerprint)
    first = history(world, source.id, limit=2)
    assert [e.snapshot.fingerprint for e in first.entries] == seen[:-3:-1]
    # The page's oldest entry is still compared with the snapshot before it.
    assert [c.change for c in first.entries[-1].changes] == [ChangeKind.ADDED]
    assert first.next_before == 4
    second = history(world, source.id, limit=2, before=first.next_before)
    assert [e.snapshot.fingerprint for e in second.entries] == seen[2:0:-1]
    last = history(world, source.id, limit=2, before=second.next_before)
    assert [e.snapshot.fingerprint for e in last.entries] == seen[:1]
    assert last.next_before is None
    assert last.entries[0].changes == ()


@pytest.mark.parametrize("limit", [0, 1001])
def test_history_refuses_limits_out_of_range(world: World, limit: int) -> None:
    source = register(world)
    with pytest.raises(InvalidInput):
        history(world, source.id, limit=limit)


def test_history_of_an_unknown_or_deleted_source_is_not_found(world: World) -> None:
    with pytest.raises(SourceNotFound):
        history(world, uuid.uuid4())
    source = register(world)
    inspect(world)(InspectSchemaQuery(READER, source.id))
    world.sources.remove(source.id)
    with pytest.raises(SourceNotFound):
        history(world, source.id)
    assert world.history.head(source.id) is None


def test_history_needs_the_read_scope(world: World) -> None:
    source = register(world, actor=ADMIN)
    with pytest.raises(PermissionDenied):
        run(GetSchemaHistory(world.sources, world.history)(SchemaHistoryQuery(NOBODY, source.id)))


def schema_events(world: World) -> list[Event]:
    page = world.events.list(EventFilter(action=Action.SOURCE_SCHEMA_CHANGED))
    return list(page.events)


def test_each_stored_snapshot_and_only_those_has_its_event(world: World) -> None:
    source = register(world)
    query = InspectSchemaQuery(READER, source.id)
    inspect(world)(query)
    inspect(world)(query)
    world.connector.tables["orders"] = (*A, Column("note", "text"))
    added = inspect(world)(query)
    world.connector.tables["orders"] = B
    retyped = inspect(world)(query)
    events = schema_events(world)
    assert [(e.source_id, e.source_name, e.actor, e.breaking) for e in events] == [
        (source.id, "orders", READER.identity, False),
        (source.id, "orders", READER.identity, False),
        (source.id, "orders", READER.identity, True),
    ]
    assert [e.at for e in events[1:]] == [added.inspected_at, retyped.inspected_at]
    assert all(e.changed == () for e in events)


def test_an_inspection_that_stores_nothing_writes_no_event(world: World) -> None:
    source = register(world)
    inspect(world)(InspectSchemaQuery(READER, source.id))
    world.connector.tables["orders"] = B
    slow = InspectSchema(
        world.sources,
        StaticConnectorRegistry([InterleavingConnector(world, source.id, A)]),
        world.cipher,
        world.clock,
        world.history,
        world.ids,
    )
    run(slow(InspectSchemaQuery(READER, source.id)))
    # The first snapshot's and the interleaved inspection's; none for the one that lost.
    assert len(schema_events(world)) == 2


def test_the_scope_is_checked_before_anything_is_read(world: World) -> None:
    source = register(world)
    with pytest.raises(PermissionDenied):
        inspect(world)(InspectSchemaQuery(NOBODY, source.id))
    assert world.connector.seen == []
