"""Inspections keep the schema history; the history reads back newest first, page by page."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import pytest

from adapters.connectors.registry import StaticConnectorRegistry
from adapters.storage.inline import InlineSourceLookup
from adapters.storage.recent_heads import LoopHeads, RecentHeads
from application.ports import Offload
from application.sources import (
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
from tests.fakes import Offloaded
from tests.unit.conftest import World

T = TypeVar("T")
NOBODY = Principal("tdbk_nobody", frozenset())
A = (Column("id", "integer", False), Column("total", "numeric"))
B = (Column("id", "bigint", False), Column("total", "numeric"), Column("note", "text", True))


def inspect(world: World) -> InspectSchema:
    return InspectSchema(
        world.sources, world.connectors, world.cipher, world.clock, world.history, world.ids
    )


def history(world: World, source_id: uuid.UUID, **query: Any) -> Any:
    use_case = GetSchemaHistory(world.sources, world.history)
    return use_case(SchemaHistoryQuery(READER, source_id, **query))


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

    def __init__(self, world: World, source_id: uuid.UUID, old: Sequence[Column]) -> None:
        self.world = world
        self.fields = world.connector.fields
        self.source_id = source_id
        self.old = old

    def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        return self.world.connector.validate(connection)

    async def validate_async(
        self, connection: Mapping[str, Any], offload: Offload
    ) -> dict[str, Any]:
        return self.validate(connection)

    def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        inspect(self.world)(InspectSchemaQuery(READER, self.source_id))
        return self.old

    async def inspect_async(
        self, connection: Mapping[str, Any], offload: Offload
    ) -> Sequence[Column]:
        return self.inspect(connection)

    def check(self, connection: Mapping[str, Any]) -> None:
        self.world.connector.check(connection)

    def forget(self, connection: Mapping[str, Any]) -> None:
        self.world.connector.forget(connection)


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
    schema = slow(InspectSchemaQuery(READER, source.id))
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
        GetSchemaHistory(world.sources, world.history)(SchemaHistoryQuery(NOBODY, source.id))


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
    slow(InspectSchemaQuery(READER, source.id))
    # The first snapshot's and the interleaved inspection's; none for the one that lost.
    assert len(schema_events(world)) == 2


def on_loop(world: World, *, with_lookups: bool = True) -> InspectSchema:
    if not with_lookups:
        return inspect(world)
    # As the container wires them: the heads the loop reads are those the history remembers.
    recent = RecentHeads(world.history)
    return InspectSchema(
        world.sources,
        world.connectors,
        world.cipher,
        world.clock,
        recent,
        world.ids,
        InlineSourceLookup(world.sources),
        LoopHeads(recent, inline=True),
    )


def test_on_the_loop_only_a_change_is_offloaded(world: World) -> None:
    source = register(world)
    use_case, query, offload = on_loop(world), InspectSchemaQuery(READER, source.id), Offloaded()
    first = asyncio.run(use_case.on_loop(query, offload))
    assert first.recorded is not None
    assert offload.calls == 1  # the first snapshot's record
    again = asyncio.run(use_case.on_loop(query, offload))
    assert (again.recorded, again.fingerprint, offload.calls) == (None, first.fingerprint, 1)
    world.connector.tables["orders"] = B
    changed = asyncio.run(use_case.on_loop(query, offload))
    assert changed.recorded is not None
    assert changed.recorded.breaking
    assert offload.calls == 2
    assert [e.snapshot.columns for e in history(world, source.id).entries] == [B, A]


def test_on_the_loop_without_lookups_the_reads_are_offloaded_too(world: World) -> None:
    source = register(world)
    query, offload = InspectSchemaQuery(READER, source.id), Offloaded()
    schema = asyncio.run(on_loop(world, with_lookups=False).on_loop(query, offload))
    assert schema.columns == A
    assert offload.calls == 3  # the source, the head, the record


def test_on_the_loop_the_scope_is_checked_before_anything_is_read(world: World) -> None:
    source = register(world)
    offload = Offloaded()
    with pytest.raises(PermissionDenied):
        asyncio.run(on_loop(world).on_loop(InspectSchemaQuery(NOBODY, source.id), offload))
    assert (offload.calls, world.connector.seen) == (0, [])
