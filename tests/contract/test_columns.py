"""The ColumnIndex contract, held by every storage adapter: a search answers from each source's
newest snapshot, kept in step with snapshot appends, renames and removals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.columns import ColumnFilter, ColumnPattern
from domain.history import SchemaSnapshot, fingerprint
from domain.sources import Column, SourceName
from tests.builders import make_source
from tests.contract.stores import FRESH_STORE_PER_EXAMPLE, SQL_ADAPTERS, StoreFactory, Stores
from tests.helpers import run

T0 = datetime(2026, 5, 1, 9, 30, 0, 123456, tzinfo=UTC)


def by(name: str = "*", type_: str | None = None) -> ColumnFilter:
    return ColumnFilter(
        name=ColumnPattern.parse("name", name),
        type=None if type_ is None else ColumnPattern.parse("type", type_),
    )


def inspected(stores: Stores, source_id: UUID, sequence: int, *columns: Column) -> SchemaSnapshot:
    snapshot = SchemaSnapshot(
        source_id, sequence, fingerprint(columns), columns, T0 + timedelta(seconds=sequence)
    )
    assert stores.history.append(snapshot)
    return snapshot


def registered(stores: Stores, name: str, source_type: str = "csv") -> UUID:
    source = make_source(name, source_type=source_type)
    stores.sources.add(source)
    return source.id


def found(stores: Stores, column_filter: ColumnFilter, limit: int = 100) -> list[tuple[str, str]]:
    page = stores.columns.find(column_filter, limit)
    return [(m.source_name, m.column.name) for m in page.matches]


def test_only_the_newest_snapshot_of_each_source_is_searched(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        orders = registered(stores, "orders")
        inspected(stores, orders, 1, Column("id", "integer", False), Column("customer", "text"))
        inspected(stores, orders, 2, Column("id", "integer", False), Column("Customer_ID", "int"))
        assert found(stores, by("customer")) == []
        [match] = stores.columns.find(by("CUSTOMER_id"), 10).matches
        assert match.source_id == orders
        assert (match.source_name, match.source_type) == ("orders", "csv")
        assert match.column == Column("Customer_ID", "int", None)
        assert match.position == 1
        assert match.observed_at == T0 + timedelta(seconds=2)


def test_wildcards_and_literal_characters(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        a = registered(stores, "a")
        columns = ("customer_id", "customerXid", "order_id", "id", "100%", "naïve_É")
        inspected(stores, a, 1, *(Column(n, "text") for n in columns))
        assert [c for _, c in found(stores, by("customer*"))] == ["customer_id", "customerXid"]
        assert [c for _, c in found(stores, by("*_id"))] == ["customer_id", "order_id"]
        assert [c for _, c in found(stores, by("*"))] == sorted(columns, key=str.lower)
        # `_` and `%` stand for themselves.
        assert [c for _, c in found(stores, by("customer_id"))] == ["customer_id"]
        assert [c for _, c in found(stores, by("1*%"))] == ["100%"]
        assert [c for _, c in found(stores, by("NAÏVE_é"))] == ["naïve_É"]
        assert [c for _, c in found(stores, by("*ï*"))] == ["naïve_É"]


def test_type_alone_or_with_a_name(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        a, b = registered(stores, "a"), registered(stores, "b", "postgres")
        inspected(stores, a, 1, Column("id", "integer"), Column("at", "timestamp"))
        inspected(stores, b, 1, Column("id", "text"), Column("seen_at", "TIMESTAMP with time zone"))
        assert sorted(found(stores, by(type_="timestamp*"))) == [("a", "at"), ("b", "seen_at")]
        assert found(stores, by("id", "INTEGER")) == [("a", "id")]


def test_renames_and_removals_are_seen(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        a, b = registered(stores, "a"), registered(stores, "b")
        inspected(stores, a, 1, Column("id", "integer"))
        inspected(stores, b, 1, Column("id", "integer"))
        source = stores.sources.get(a)
        stores.sources.update(attrs.evolve(source, name=SourceName("renamed"), version=2), 1)
        assert sorted(found(stores, by("id"))) == [("b", "id"), ("renamed", "id")]
        stores.sources.remove(b)
        assert found(stores, by("id")) == [("renamed", "id")]


def test_pages_follow_the_key_order_without_gaps(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        for i in range(5):
            ident = registered(stores, f"s{i}")
            inspected(stores, ident, 1, Column("ID", "integer"), Column("id", "text"))
        seen, after = [], None
        while True:
            page = stores.columns.find(by("id"), 3, after)
            seen += [m.key for m in page.matches]
            if page.next_key is None:
                break
            after = page.next_key
        assert len(seen) == 10
        assert seen == sorted(seen)
        assert len(set(seen)) == 10


column_names = st.sampled_from(["id", "ID", "customer_id", "Customer", "total", "é", "x_y"])


# Each example migrates a fresh store (a PostgreSQL schema takes a good part of a second).
@settings(FRESH_STORE_PER_EXAMPLE, max_examples=8)
@given(
    schemas=st.lists(
        st.lists(
            st.lists(st.builds(Column, column_names, st.just("text")), max_size=4), max_size=3
        ),
        min_size=1,
        max_size=4,
    ),
    pattern=st.sampled_from(["id", "*id", "c*", "*", "*_*", "é"]),
    limit=st.integers(1, 4),
)
def test_a_search_is_a_scan_of_the_newest_snapshots(
    new_stores: StoreFactory, schemas: list[list[list[Column]]], pattern: str, limit: int
) -> None:
    with new_stores() as stores:
        expected = []
        for i, history in enumerate(schemas):
            ident = registered(stores, f"s{i}")
            for sequence, columns in enumerate(history, start=1):
                inspected(stores, ident, sequence, *columns)
            newest = history[-1] if history else []
            column_filter = by(pattern)
            expected += [
                (c.name.lower(), ident, p) for p, c in enumerate(newest) if column_filter.matches(c)
            ]
        keys, after = [], None
        while True:
            page = stores.columns.find(by(pattern), limit, after)
            assert len(page.matches) <= limit
            keys += [
                (k.folded_name, k.source_id, k.position) for k in (m.key for m in page.matches)
            ]
            if page.next_key is None:
                break
            after = page.next_key
        assert keys == sorted(expected)


def _drop_the_index(stores: Stores) -> None:
    """Back to the schema before the index: its table gone and its version not applied."""
    db = stores.store.target
    if hasattr(db, "writing"):
        with db.writing() as conn:
            conn.execute("DROP TABLE latest_columns")
            conn.execute("DELETE FROM _sqlite_migrations WHERE name = '8'")
        return

    async def drop() -> None:
        async with db.transaction() as conn:
            await conn.execute("DROP TABLE latest_columns")
            await conn.execute("DELETE FROM schema_migrations WHERE version = 8")

    run(drop())


@pytest.mark.parametrize("adapter", SQL_ADAPTERS, indirect=True)
def test_the_migration_indexes_the_histories_already_stored(new_stores: StoreFactory) -> None:
    with new_stores() as stores:
        a, b = registered(stores, "a"), registered(stores, "b")
        inspected(stores, a, 1, Column("customer", "text"))
        inspected(stores, a, 2, Column("Customer_ID", "integer", False), Column("é", "text"))
        inspected(stores, b, 1, Column("customer_id", "text", True))
        _drop_the_index(stores)
        assert stores.store.upgrade() == [8]
        assert sorted(found(stores, by("customer_id"))) == [
            ("a", "Customer_ID"),
            ("b", "customer_id"),
        ]
        [match] = stores.columns.find(by("É"), 10).matches
        assert (match.column, match.position) == (Column("é", "text", None), 1)
        assert found(stores, by("customer")) == []
