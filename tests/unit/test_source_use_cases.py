"""The source use cases, on in-memory adapters."""

from __future__ import annotations

import uuid

import pytest

from application.history import InspectSchema, InspectSchemaQuery
from application.sources import (
    DeleteSource,
    DeleteSourceCommand,
    GetSource,
    GetSourceQuery,
    ListSources,
    ListSourcesQuery,
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
from domain.sources import MASK, Column, SourceFilter
from tests.builders import ADMIN, READER, WRITER, register
from tests.helpers import Synced
from tests.unit.conftest import World


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
    get = Synced(
        GetSource(
            world.sources, world.connectors, world.cipher, world.events, world.clock, world.ids
        )
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
    Synced(DeleteSource(world.sources, world.connectors, world.clock, world.ids))(
        DeleteSourceCommand(ADMIN, first.id)
    )
    assert register(world).id != first.id


def test_delete_needs_write_and_an_existing_source(world: World) -> None:
    source = register(world)
    delete = Synced(DeleteSource(world.sources, world.connectors, world.clock, world.ids))
    with pytest.raises(PermissionDenied):
        delete(DeleteSourceCommand(READER, source.id))
    delete(DeleteSourceCommand(WRITER, source.id))
    with pytest.raises(SourceNotFound):
        delete(DeleteSourceCommand(WRITER, source.id))
    with pytest.raises(SourceNotFound):
        Synced(
            GetSource(
                world.sources, world.connectors, world.cipher, world.events, world.clock, world.ids
            )
        )(GetSourceQuery(ADMIN, source.id))


def test_list_is_oldest_first_filtered_and_paged(world: World) -> None:
    for i in range(5):
        register(world, name=f"s{i}", tags=["even"] if i % 2 == 0 else [])
    list_sources = Synced(ListSources(world.sources))
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
        Synced(ListSources(world.sources))(ListSourcesQuery(READER, limit=limit))


def test_inspect_gives_the_connector_the_decrypted_secret(world: World) -> None:
    source = register(world)
    inspect = Synced(
        InspectSchema(
            world.sources, world.connectors, world.cipher, world.clock, world.history, world.ids
        )
    )
    schema = inspect(InspectSchemaQuery(READER, source.id))
    assert schema.source_id == source.id
    assert schema.source_name == "orders"
    assert schema.columns == (Column("id", "integer", False), Column("total", "numeric"))
    assert world.connector.seen[-1]["password"] == "s3cret"


def test_inspect_passes_backend_failures_through(world: World) -> None:
    source = register(world, connection={"table": "missing"})
    inspect = Synced(
        InspectSchema(
            world.sources, world.connectors, world.cipher, world.clock, world.history, world.ids
        )
    )
    with pytest.raises(BackendUnavailable) as caught:
        inspect(InspectSchemaQuery(READER, source.id))
    assert caught.value.reason == "table_not_found"
    with pytest.raises(SourceNotFound):
        inspect(InspectSchemaQuery(READER, uuid.uuid4()))


def test_a_registration_that_tests_its_connection_stores_only_what_passes(world: World) -> None:
    source = register(world, verify=True)
    assert world.connector.seen == [{"table": "orders", "password": "s3cret", "port": 1}]
    with pytest.raises(VerificationFailed):
        register(world, name="other", verify=True, connection={"table": "nope"})
    assert [s.id for s in world.sources.list(SourceFilter()).sources] == [source.id]


@pytest.mark.parametrize("verify", [False, True])
def test_the_scope_is_checked_before_anything_is_looked_at(world: World, verify: bool) -> None:
    with pytest.raises(PermissionDenied):
        register(world, actor=READER, verify=verify)
    assert world.sources.list(SourceFilter()).sources == ()
    assert world.connector.seen == []
