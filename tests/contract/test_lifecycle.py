"""The lifecycle contract: versions compared and set by the store, and each change's event
written in the same transaction as the change, on every storage adapter."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.storage import postgres, sqlite
from adapters.storage.postgres import PostgresDatabase
from adapters.storage.sqlite import SqliteDatabase
from domain.errors import DuplicateSourceName, SourceNotFound, VersionMismatch
from domain.events import Action, Event, EventFilter, EventKey, event_order
from domain.keys import Scope
from domain.sources import Source, SourceName
from tests.builders import T0, make_key, make_source
from tests.contract import strategies
from tests.contract.stores import FRESH_STORE_PER_EXAMPLE, SQL_ADAPTERS, StoreFactory, Stores
from tests.contract.threads import race
from tests.helpers import run


def event(action: Action, source: Source | None = None, **changes: object) -> Event:
    fields: dict[str, object] = {
        "id": uuid4(),
        "at": T0,
        "actor": "tdbk_0123456789abcdef",
        "action": action,
        "source_id": source.id if source is not None else None,
        "source_name": source.name.value if source is not None else None,
    }
    fields.update(changes)
    return Event(**fields)  # type: ignore[arg-type]


def trail(events: Any, **criteria: object) -> list[Event]:
    return list(events.list(EventFilter(**criteria)).events)  # type: ignore[arg-type]


def renamed(source: Source, name: str, version: int) -> Source:
    return attrs.evolve(
        source, name=SourceName(name), version=version, updated_at=T0 + timedelta(seconds=version)
    )


def test_a_change_at_the_expected_version_is_stored_with_its_event(
    new_stores: StoreFactory,
) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        registered = event(Action.SOURCE_REGISTERED, source)
        stores.sources.add(source, registered)
        second = attrs.evolve(
            renamed(source, "orders-2", 2), tags=("pii",), connection={"path": "b.csv"}
        )
        updated = event(Action.SOURCE_UPDATED, second, at=T0 + timedelta(seconds=1))
        stores.sources.update(second, 1, updated)
        assert stores.sources.get(source.id) == second
        assert trail(stores.events) == [registered, updated]


@pytest.mark.parametrize("expected", [0, 2, 99])
def test_a_stale_version_changes_nothing_and_records_nothing(
    new_stores: StoreFactory, expected: int
) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        stores.sources.add(source)
        with pytest.raises(VersionMismatch) as stale:
            stores.sources.update(
                renamed(source, "x", expected + 1), expected, event(Action.SOURCE_UPDATED)
            )
        assert stale.value.current_version == 1
        with pytest.raises(VersionMismatch):
            stores.sources.remove(source.id, expected, event(Action.SOURCE_DELETED))
        assert stores.sources.get(source.id) == source
        assert trail(stores.events) == []


def test_an_update_to_a_taken_name_changes_nothing_and_records_nothing(
    new_stores: StoreFactory,
) -> None:
    with new_stores() as stores:
        first, second = make_source("orders"), make_source("customers")
        stores.sources.add(first)
        stores.sources.add(second)
        with pytest.raises(DuplicateSourceName):
            stores.sources.update(renamed(second, "orders", 2), 1, event(Action.SOURCE_UPDATED))
        assert stores.sources.get(second.id) == second
        assert trail(stores.events) == []
        # Its own name is no conflict.
        stores.sources.update(renamed(second, "customers", 2), 1)
        assert stores.sources.get(second.id).version == 2


def test_a_change_to_an_unknown_source_is_not_found(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        ghost = make_source("ghost")
        with pytest.raises(SourceNotFound):
            stores.sources.update(renamed(ghost, "x", 2), 1, event(Action.SOURCE_UPDATED))
        with pytest.raises(SourceNotFound):
            stores.sources.remove(ghost.id, 1, event(Action.SOURCE_DELETED))
        assert trail(stores.events) == []


def test_a_deletion_event_names_the_source_and_outlives_it(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        source = make_source("orders")
        stores.sources.add(source, event(Action.SOURCE_REGISTERED, source))
        stores.sources.update(renamed(source, "orders-v2", 2), 1)
        deleted = event(
            Action.SOURCE_DELETED, source_id=source.id, source_name=None, at=T0 + timedelta(1)
        )
        stores.sources.remove(source.id, 2, deleted)
        with pytest.raises(SourceNotFound):
            stores.sources.get(source.id)
        events = trail(stores.events, source_id=source.id)
        assert [e.action for e in events] == [Action.SOURCE_REGISTERED, Action.SOURCE_DELETED]
        assert events[1] == attrs.evolve(deleted, source_name="orders-v2")


def test_a_duplicate_registration_records_nothing(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        stores.sources.add(make_source("orders"))
        late = make_source("orders")
        with pytest.raises(DuplicateSourceName):
            stores.sources.add(late, event(Action.SOURCE_REGISTERED, late))
        assert trail(stores.events) == []


def test_key_events_go_with_their_change_and_only_the_first_revocation_counts(
    new_stores: StoreFactory,
) -> None:
    with new_stores() as stores:
        created = event(Action.KEY_CREATED, key_id="k1", actor="tdb-cli")
        assert stores.keys.add_if_none(make_key("k1"), created)
        assert not stores.keys.add_if_none(make_key("k2"), event(Action.KEY_CREATED, key_id="k2"))
        revoked = event(Action.KEY_REVOKED, key_id="k1", at=T0 + timedelta(seconds=1))
        stores.keys.revoke("k1", T0 + timedelta(seconds=1), revoked)
        stores.keys.revoke("k1", T0 + timedelta(seconds=2), event(Action.KEY_REVOKED, key_id="k1"))
        other = event(Action.KEY_CREATED, key_id="k3", at=T0 + timedelta(seconds=3))
        stores.keys.add(make_key("k3"), other)
        assert trail(stores.events) == [created, revoked, other]


def test_simultaneous_revocations_record_one_event(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        stores.keys.add(make_key("k1"))
        outcomes = race(
            6, lambda i: stores.keys.revoke("k1", T0, event(Action.KEY_REVOKED, key_id="k1"))
        )
        assert outcomes == [None] * 6
        assert len(trail(stores.events, action=Action.KEY_REVOKED)) == 1


def test_simultaneous_changes_from_one_version_store_exactly_one(
    new_stores: StoreFactory,
) -> None:
    attempts = 8
    with new_stores.shared(2) as handles:
        source = make_source("orders")
        handles[0].sources.add(source)
        versions = [renamed(source, f"orders-{i}", 2) for i in range(attempts)]
        outcomes = race(
            attempts,
            lambda i: handles[i % 2].sources.update(
                versions[i], 1, event(Action.SOURCE_UPDATED, versions[i])
            ),
        )
        winners = [i for i, outcome in enumerate(outcomes) if outcome is None]
        assert len(winners) == 1, outcomes
        assert all(isinstance(o, VersionMismatch) for o in outcomes if o is not None), outcomes
        assert handles[1].sources.get(source.id) == versions[winners[0]]
        events = trail(handles[0].events)
        assert [e.source_name for e in events] == [f"orders-{winners[0]}"]


def test_simultaneous_conditional_deletions_delete_once(new_stores: StoreFactory) -> None:
    with new_stores.shared(2) as handles:
        source = make_source("orders")
        handles[0].sources.add(source)
        outcomes = race(
            6,
            lambda i: handles[i % 2].sources.remove(
                source.id, 1, event(Action.SOURCE_DELETED, source)
            ),
        )
        assert outcomes.count(None) == 1, outcomes
        assert all(isinstance(o, VersionMismatch | SourceNotFound) for o in outcomes if o), outcomes
        assert len(trail(handles[1].events)) == 1


@FRESH_STORE_PER_EXAMPLE
@given(
    batch=st.lists(strategies.events, max_size=12, unique_by=lambda e: e.id),
    event_filter=strategies.event_filters,
    limit=st.none() | st.integers(min_value=1, max_value=4),
)
def test_the_trail_is_listed_oldest_first_filtered_and_paged(
    new_stores: StoreFactory, batch: list[Event], event_filter: EventFilter, limit: int | None
) -> None:
    with new_stores() as stores:
        for item in batch:
            stores.events.append(item)
        expected = sorted(filter(event_filter.matches, batch), key=event_order)
        seen: list[Event] = []
        after: EventKey | None = None
        while True:
            page = stores.events.list(event_filter, limit, after)
            seen += page.events
            if page.next_key is None:
                break
            assert limit is not None
            assert len(page.events) == limit
            after = page.next_key
        assert seen == expected


@contextmanager
def _writing(stores: Stores) -> Iterator[Callable[[str], object]]:
    """Raw SQL inside one write transaction of a SQL store."""
    db = stores.store.target
    if isinstance(db, SqliteDatabase):
        with db.writing() as handle:
            yield handle.execute
    else:
        assert isinstance(db, PostgresDatabase)
        statements: list[str] = []
        yield statements.append

        async def write() -> None:
            async with db.transaction() as conn:
                for statement in statements:
                    await conn.execute(statement)  # type: ignore[arg-type]

        run(write())


@pytest.mark.parametrize("adapter", SQL_ADAPTERS)
def test_sources_and_keys_of_version_1_are_carried_over(
    new_stores: StoreFactory, adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = sqlite if adapter == "sqlite" else postgres
    with new_stores(upgraded=False) as stores:
        monkeypatch.setattr(module, "MIGRATIONS", module.MIGRATIONS[:1])
        assert stores.store.upgrade() == [1]
        monkeypatch.undo()
        # Every scope of version 1: such a key was given audit:read with it, and no scope
        # made later (a key's scopes never change by themselves).
        every = sorted(s.value for s in (Scope.READ, Scope.WRITE, Scope.SECRETS))

        def scopes(values: list[str]) -> str:
            if adapter == "sqlite":
                return "'" + json.dumps(values) + "'"
            return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"

        with _writing(stores) as execute:
            execute(
                "INSERT INTO sources (id, name, source_type, connection, description, tags,"
                " registered_by, registered_at, status) VALUES"
                " ('00000000-0000-0000-0000-000000000001', 'orders', 'csv',"
                f""" '{{"path": "o.csv"}}', '', {"'[]'" if adapter == "sqlite" else "'{}'"},"""
                " 'tdbk_0123456789abcdef', '2026-05-01T09:30:00.000000Z', 'active')"
            )
            for key_id, given in (("all", every), ("few", ["sources:read"])):
                execute(
                    "INSERT INTO api_keys (key_id, name, scopes, secret_hash, created_at) VALUES"
                    f" ('{key_id}', 'k', {scopes(given)}, 'h', '2026-05-01T09:30:00.000000Z')"
                )
        assert stores.store.upgrade() == list(new_stores.versions[1:])
        source = stores.sources.get(UUID(int=1))
        assert (source.version, source.updated_at, source.updated_by) == (
            1,
            T0,
            "tdbk_0123456789abcdef",
        )
        assert stores.keys.get("all").scopes == {
            Scope.READ,
            Scope.WRITE,
            Scope.SECRETS,
            Scope.AUDIT,
        }
        assert stores.keys.get("few").scopes == {Scope.READ}
        # The carried-over source takes part in the lifecycle like any other.
        stores.sources.update(renamed(source, "orders-2", 2), 1, event(Action.SOURCE_UPDATED))
        assert stores.sources.get(UUID(int=1)).version == 2
