"""The source use cases, on in-memory adapters."""

from __future__ import annotations

import asyncio
import functools
import uuid
from typing import Any

import pytest

from adapters.storage.inline import InlineSourceWrites
from application.sources import (
    DeleteSource,
    DeleteSourceCommand,
    GetSource,
    GetSourceQuery,
    InspectSchema,
    InspectSchemaQuery,
    ListSources,
    ListSourcesQuery,
    RegisterSource,
)
from domain.errors import (
    BackendUnavailable,
    DuplicateSourceName,
    InvalidConnection,
    InvalidInput,
    PermissionDenied,
    SourceNotFound,
    UnknownSourceType,
    VerificationFailed,
)
from domain.events import EventFilter
from domain.keys import Principal
from domain.sources import MASK, Column, Source, SourceFilter
from tests.builders import ADMIN, READER, WRITER, make_source, register, registration
from tests.fakes import Offloaded
from tests.unit.conftest import World, new_world, outcome


def test_register_returns_the_full_record_with_defaults(world: World) -> None:
    source = register(world, description="Order records", tags=["finance"])
    assert source.id == uuid.UUID(int=1)
    assert source.name.value == "orders"
    assert dict(source.connection) == {"table": "orders", "password": "s3cret", "port": 1}
    assert source.tags == ("finance",)
    assert source.registered_by == "tdbk_admin"
    assert source.status == "active"


def test_null_description_and_tags_mean_not_given(world: World) -> None:
    source = register(world, description=None, tags=None)
    assert source.description == ""
    assert source.tags == ()


def test_secrets_are_encrypted_at_rest(world: World) -> None:
    source = register(world)
    stored = world.sources.get(source.id).connection["password"]
    assert stored != "s3cret"
    assert world.cipher.decrypt(stored) == "s3cret"


def test_secrets_are_masked_without_the_secrets_scope(world: World) -> None:
    source = register(world, actor=WRITER)
    assert source.connection["password"] == MASK
    get = GetSource(
        world.sources, world.connectors, world.cipher, world.events, world.clock, world.ids
    )
    assert get(GetSourceQuery(READER, source.id)).connection["password"] == MASK
    assert get(GetSourceQuery(ADMIN, source.id)).connection["password"] == "s3cret"


def test_register_needs_the_write_scope(world: World) -> None:
    with pytest.raises(PermissionDenied):
        register(world, actor=READER)
    assert world.sources.list(SourceFilter()).sources == ()


def test_register_names_every_invalid_field(world: World) -> None:
    with pytest.raises(InvalidInput) as caught:
        register(world, name=" ", description="x" * 501, tags=[""])
    assert {e.field for e in caught.value.errors} == {"name", "description", "tags[0]"}


def test_register_refuses_unknown_types_naming_the_available_ones(world: World) -> None:
    with pytest.raises(UnknownSourceType) as caught:
        register(world, source_type="mysql")
    assert caught.value.available == ("fake",)


def test_register_refuses_a_bad_connection(world: World) -> None:
    with pytest.raises(InvalidConnection) as caught:
        register(world, connection={"tabel": "orders"})
    assert {e.field for e in caught.value.errors} == {"connection.tabel", "connection.table"}


def test_names_are_unique_until_deleted(world: World) -> None:
    first = register(world)
    with pytest.raises(DuplicateSourceName):
        register(world)
    DeleteSource(world.sources, world.connectors, world.clock, world.ids)(
        DeleteSourceCommand(ADMIN, first.id)
    )
    assert register(world).id != first.id


def test_delete_needs_write_and_an_existing_source(world: World) -> None:
    source = register(world)
    delete = DeleteSource(world.sources, world.connectors, world.clock, world.ids)
    with pytest.raises(PermissionDenied):
        delete(DeleteSourceCommand(READER, source.id))
    delete(DeleteSourceCommand(WRITER, source.id))
    with pytest.raises(SourceNotFound):
        delete(DeleteSourceCommand(WRITER, source.id))
    with pytest.raises(SourceNotFound):
        GetSource(
            world.sources, world.connectors, world.cipher, world.events, world.clock, world.ids
        )(GetSourceQuery(ADMIN, source.id))


def test_list_is_oldest_first_filtered_and_paged(world: World) -> None:
    for i in range(5):
        register(world, name=f"s{i}", tags=["even"] if i % 2 == 0 else [])
    list_sources = ListSources(world.sources)
    names = [s.name for s in list_sources(ListSourcesQuery(READER)).sources]
    assert names == ["s0", "s1", "s2", "s3", "s4"]
    evens = list_sources(ListSourcesQuery(READER, SourceFilter(tags=("even",))))
    assert [s.name for s in evens.sources] == ["s0", "s2", "s4"]
    page = list_sources(ListSourcesQuery(READER, limit=2))
    assert [s.name for s in page.sources] == ["s0", "s1"]
    rest = list_sources(ListSourcesQuery(READER, limit=10, after=page.next_key))
    assert [s.name for s in rest.sources] == ["s2", "s3", "s4"]
    assert rest.next_key is None


@pytest.mark.parametrize("limit", [0, 1001, -5])
def test_list_refuses_limits_out_of_range(world: World, limit: int) -> None:
    with pytest.raises(InvalidInput):
        ListSources(world.sources)(ListSourcesQuery(READER, limit=limit))


def test_inspect_gives_the_connector_the_decrypted_secret(world: World) -> None:
    source = register(world)
    inspect = InspectSchema(
        world.sources, world.connectors, world.cipher, world.clock, world.history, world.ids
    )
    schema = inspect(InspectSchemaQuery(READER, source.id))
    assert schema.source_id == source.id
    assert schema.source_name == "orders"
    assert schema.columns == (Column("id", "integer", False), Column("total", "numeric"))
    assert world.connector.seen[-1]["password"] == "s3cret"


def test_inspect_passes_backend_failures_through(world: World) -> None:
    source = register(world, connection={"table": "missing"})
    inspect = InspectSchema(
        world.sources, world.connectors, world.cipher, world.clock, world.history, world.ids
    )
    with pytest.raises(BackendUnavailable) as caught:
        inspect(InspectSchemaQuery(READER, source.id))
    assert caught.value.reason == "table_not_found"
    with pytest.raises(SourceNotFound):
        inspect(InspectSchemaQuery(READER, uuid.uuid4()))


def test_masked_reads_answer_as_a_call_for_a_reader_and_mask_for_anyone(world: World) -> None:
    source = register(world)
    get = GetSource(
        world.sources, world.connectors, world.cipher, world.events, world.clock, world.ids
    )
    masked = asyncio.run(get.masked(GetSourceQuery(READER, source.id)))
    assert masked == get(GetSourceQuery(READER, source.id))
    assert masked.connection["password"] == MASK
    # Even an actor who may see secrets gets them masked, and so nothing is recorded.
    events_before = world.events.list(EventFilter())
    assert asyncio.run(get.masked(GetSourceQuery(ADMIN, source.id))) == masked
    assert world.events.list(EventFilter()) == events_before
    with pytest.raises(PermissionDenied):
        asyncio.run(get.masked(GetSourceQuery(Principal("tdbk_nobody", frozenset()), source.id)))


# --- registration on the event loop ------------------------------------------------------------


def register_on_loop(
    world: World, offload: Offloaded, *, writes: bool = True, **fields: Any
) -> Source:
    """`register`, awaited: stores through the memory store's writes, or, without them, through
    `offload`."""
    use_case = RegisterSource(
        world.sources,
        world.connectors,
        world.cipher,
        world.clock,
        world.ids,
        InlineSourceWrites(world.sources) if writes else None,
    )
    return asyncio.run(use_case.on_loop(registration(**fields), offload))


REGISTRATIONS: list[dict[str, Any]] = [
    {},
    {"description": "Order records", "tags": ["finance", "pii"], "actor": WRITER},
    {"name": " ", "description": "x" * 501, "tags": [""]},
    {"source_type": "mysql"},
    {"connection": {"tabel": "orders"}},
    {"actor": READER},
    {"verify": True},
    {"verify": True, "connection": {"table": "missing", "password": "p"}},
]


@pytest.mark.parametrize("writes", [True, False], ids=["writes", "offloaded-write"])
@pytest.mark.parametrize("fields", REGISTRATIONS)
def test_on_the_loop_a_registration_answers_as_a_call_does(
    fields: dict[str, Any], writes: bool
) -> None:
    called, awaited = new_world(), new_world()
    for world in (called, awaited):  # the second registration of a name is a duplicate
        world.sources.add(make_source("taken"))
    for each in (fields, {"name": "taken"}):
        awaited_outcome = outcome(
            awaited,
            functools.partial(register_on_loop, awaited, Offloaded(), writes=writes, **each),
        )
        assert awaited_outcome == outcome(called, functools.partial(register, called, **each))


def test_on_the_loop_with_writes_nothing_is_offloaded(world: World) -> None:
    offload = Offloaded()
    source = register_on_loop(world, offload)
    assert offload.calls == 0
    assert world.sources.get(source.id).name == source.name


def test_on_the_loop_without_writes_only_the_write_is_offloaded(world: World) -> None:
    offload = Offloaded()
    source = register_on_loop(world, offload, writes=False)
    assert offload.calls == 1
    assert world.sources.get(source.id).name == source.name


def test_on_the_loop_a_registration_that_tests_its_connection_is_wholly_offloaded(
    world: World,
) -> None:
    offload = Offloaded()
    source = register_on_loop(world, offload, verify=True)
    assert offload.calls == 1
    assert world.connector.seen == [{"table": "orders", "password": "s3cret", "port": 1}]
    with pytest.raises(VerificationFailed):
        register_on_loop(world, offload, name="other", verify=True, connection={"table": "nope"})
    assert offload.calls == 2
    assert [s.id for s in world.sources.list(SourceFilter()).sources] == [source.id]


@pytest.mark.parametrize("verify", [False, True])
def test_on_the_loop_the_scope_is_checked_before_anything_is_looked_at(
    world: World, verify: bool
) -> None:
    offload = Offloaded()
    with pytest.raises(PermissionDenied):
        register_on_loop(world, offload, actor=READER, writes=False, verify=verify)
    assert (offload.calls, world.sources.list(SourceFilter()).sources) == (0, ())
    assert world.connector.seen == []
