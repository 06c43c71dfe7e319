"""The Connector contract, one suite run against every connector on a real backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from adapters.connectors.contract import CHECKS, ContractCase, plugin_case
from adapters.connectors.csv import CsvConnector
from adapters.connectors.jsonl import JsonLinesConnector
from adapters.connectors.mysql import MysqlConnector
from adapters.connectors.parquet import ParquetConnector
from adapters.connectors.plugins import PluginConnector
from adapters.connectors.postgres import PostgresConnector
from domain.connections import BACKEND_REASONS, ConnectionField
from domain.errors import BackendUnavailable, InvalidConnection
from domain.sources import Column
from tests.helpers import Synced, mysql_execute, run

T = TypeVar("T")

# Every reason a connector may give; the HTTP layer shows them as they are.
REASONS = BACKEND_REASONS


@attrs.frozen
class Live:
    """A real source a connector can read, and one that does not exist."""

    existing: dict[str, Any]
    columns: list[str]
    missing: dict[str, Any]


@attrs.frozen
class Case:
    """One connector under contract: what it must declare, and how to give it a real source.

    The connector is seen through `Synced`: a test's own call gives its answer."""

    connector: Any
    minimal: dict[str, Any]
    defaults: dict[str, Any]
    secrets: set[str]
    live: Callable[[], Live]


def postgres_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    def live() -> Live:
        url = request.getfixturevalue("postgres_url")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS contract_items (sku text NOT NULL, qty integer)"
            )
        info = psycopg.conninfo.conninfo_to_dict(url)
        where = {
            "host": info.get("host", "127.0.0.1"),
            "port": int(info.get("port") or 5432),
            "dbname": info["dbname"],
            "user": info.get("user", "postgres"),
            "password": info.get("password") or "",
        }
        return Live(
            existing={**where, "table": "contract_items"},
            columns=["sku", "qty"],
            missing={**where, "table": "contract_no_such_table"},
        )

    return Case(
        connector=Synced(PostgresConnector(connect_timeout=2, statement_timeout_ms=2000)),
        minimal={"host": "db.internal", "dbname": "d", "user": "reader", "table": "orders"},
        defaults={"port": 5432, "schema": "public"},
        secrets={"password"},
        live=live,
    )


def csv_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    def live() -> Live:
        (tmp_path / "items.csv").write_text("sku,qty\nA-1,3\nB-2,\n")
        return Live(
            existing={"path": "items.csv"},
            columns=["sku", "qty"],
            missing={"path": "no-such-file.csv"},
        )

    return Case(
        connector=Synced(CsvConnector(tmp_path)),
        minimal={"path": "items.csv"},
        defaults={"header": True},
        secrets=set(),
        live=live,
    )


def mysql_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    def live() -> Live:
        where = request.getfixturevalue("mysql_database")
        mysql_execute(
            where, "CREATE TABLE IF NOT EXISTS contract_items (sku varchar(20) NOT NULL, qty int)"
        )
        return Live(
            existing={**where, "table": "contract_items"},
            columns=["sku", "qty"],
            missing={**where, "table": "contract_no_such_table"},
        )

    return Case(
        connector=Synced(MysqlConnector(connect_timeout=2, statement_timeout_ms=2000)),
        minimal={"host": "db.internal", "dbname": "d", "user": "reader", "table": "orders"},
        defaults={"port": 3306, "ssl_mode": "preferred"},
        secrets={"password"},
        live=live,
    )


def parquet_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    def live() -> Live:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"sku": ["A-1"], "qty": [3]}), tmp_path / "items.parquet")
        return Live(
            existing={"path": "items.parquet"},
            columns=["sku", "qty"],
            missing={"path": "no-such-file.parquet"},
        )

    return Case(
        connector=Synced(ParquetConnector(tmp_path)),
        minimal={"path": "items.parquet"},
        defaults={},
        secrets=set(),
        live=live,
    )


def jsonl_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    def live() -> Live:
        (tmp_path / "items.jsonl").write_text('{"sku": "A-1", "qty": 3}\n{"sku": "B-2"}\n')
        return Live(
            existing={"path": "items.jsonl"},
            columns=["sku", "qty"],
            missing={"path": "no-such-file.jsonl"},
        )

    return Case(
        connector=Synced(JsonLinesConnector(tmp_path)),
        minimal={"path": "items.jsonl"},
        defaults={},
        secrets=set(),
        live=live,
    )


def example_plugin_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    """The example plug-in of examples/, pip-installed, loaded through its entry point."""
    import sqlite3
    from importlib.metadata import distributions

    target = request.getfixturevalue("example_plugin")
    request.getfixturevalue("monkeypatch").syspath_prepend(str(target))
    (entry,) = [
        e
        for d in distributions(path=[str(target)])
        for e in d.entry_points
        if e.group == "tdb.connectors"
    ]
    connector = PluginConnector(entry.name, entry.load()(), "tdb-sqlite-connector==0.1.0")

    def live() -> Live:
        with sqlite3.connect(tmp_path / "shop.db") as db:
            db.execute("CREATE TABLE IF NOT EXISTS items (sku TEXT NOT NULL, qty INTEGER)")
        return Live(
            existing={"database": str(tmp_path / "shop.db"), "table": "items"},
            columns=["sku", "qty"],
            missing={"database": str(tmp_path / "shop.db"), "table": "no_such_table"},
        )

    return Case(
        connector=Synced(connector),
        minimal={"database": "shop.db", "table": "items"},
        defaults={"timeout": 2.0},
        secrets=set(),
        live=live,
    )


@pytest.fixture(
    params=[
        pytest.param(postgres_case, id="postgres", marks=pytest.mark.postgres),
        pytest.param(csv_case, id="csv"),
        pytest.param(mysql_case, id="mysql", marks=pytest.mark.mysql),
        pytest.param(parquet_case, id="parquet"),
        pytest.param(jsonl_case, id="jsonl"),
        pytest.param(example_plugin_case, id="example-plugin"),
    ]
)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    make: Callable[[pytest.FixtureRequest, Path], Case] = request.param
    return make(request, tmp_path)


def error_fields(connector: Any, connection: Any) -> list[str]:
    with pytest.raises(InvalidConnection) as caught:
        connector.validate(connection)
    return [e.field for e in caught.value.errors]


# --- declaration -----------------------------------------------------------------------------


def test_a_connector_declares_its_type_and_its_fields_once(case: Case) -> None:
    connector = case.connector
    assert isinstance(connector.source_type, str)
    assert connector.source_type
    assert all(isinstance(f, ConnectionField) for f in connector.fields)
    names = [f.name for f in connector.fields]
    assert len(names) == len(set(names))


def test_a_connector_declares_which_fields_are_secret(case: Case) -> None:
    assert {f.name for f in case.connector.fields if f.secret} == case.secrets


# --- validation ------------------------------------------------------------------------------


def test_validate_fills_the_defaults(case: Case) -> None:
    assert case.connector.validate(case.minimal) == {**case.minimal, **case.defaults}


def test_validate_is_idempotent(case: Case) -> None:
    once = case.connector.validate(case.minimal)
    assert case.connector.validate(once) == once


VALIDATION_PER_EXAMPLE = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
"""For a hypothesis test of `validate` on a `case`: validation reads no backend and keeps nothing,
so one connector serves every example; `case.live()` (which writes) is not called there."""


@VALIDATION_PER_EXAMPLE
@given(unknown=st.sets(st.text(min_size=1, max_size=12), min_size=1, max_size=3))
def test_validate_names_every_unknown_field(case: Case, unknown: set[str]) -> None:
    known = {f.name for f in case.connector.fields}
    unknown -= known
    assume(unknown)
    connection = {**case.minimal, **dict.fromkeys(unknown, "x")}
    assert set(error_fields(case.connector, connection)) == {f"connection.{n}" for n in unknown}


@VALIDATION_PER_EXAMPLE
@given(data=st.data())
def test_validate_names_every_missing_required_field(case: Case, data: st.DataObject) -> None:
    required = sorted(f.name for f in case.connector.fields if f.required)
    dropped = data.draw(st.sets(st.sampled_from(required), min_size=1))
    connection = {k: v for k, v in case.minimal.items() if k not in dropped}
    assert set(error_fields(case.connector, connection)) == {f"connection.{n}" for n in dropped}


@pytest.mark.parametrize("connection", [None, [], "host=db", 42])
def test_validate_refuses_a_connection_that_is_not_an_object(case: Case, connection: Any) -> None:
    assert error_fields(case.connector, connection) == ["connection"]


# --- inspection ------------------------------------------------------------------------------


def test_inspect_returns_the_columns_of_a_real_source(case: Case) -> None:
    live = case.live()
    columns = case.connector.inspect(case.connector.validate(live.existing))
    assert all(isinstance(c, Column) for c in columns)
    assert [c.name for c in columns] == live.columns
    assert all(isinstance(c.type, str) and c.type for c in columns)
    assert all(c.nullable in (True, False, None) for c in columns)


def test_inspect_of_a_missing_source_is_backend_unavailable_with_a_reason(case: Case) -> None:
    live = case.live()
    connection = case.connector.validate(live.missing)
    with pytest.raises(BackendUnavailable) as caught:
        case.connector.inspect(connection)
    assert caught.value.reason in REASONS
    assert caught.value.reason in ("table_not_found", "file_not_found")
    for secret in case.secrets:
        if connection.get(secret):
            assert connection[secret] not in str(caught.value)


# --- the contract suite tdb ships (adapters.connectors.contract), on every connector ---------


@pytest.mark.parametrize("check", list(CHECKS))
def test_the_shipped_contract_holds(case: Case, check: str) -> None:
    live = case.live()
    shipped = ContractCase(
        connector=case.connector.target,
        minimal=case.minimal,
        existing=live.existing,
        columns=live.columns,
        missing=live.missing,
    )
    run(CHECKS[check](shipped))


def test_the_shipped_contract_finds_a_broken_plugin(tmp_path: Path) -> None:
    class Forgetful:
        """Declares a required field, then answers columns out of order."""

        title = "Forgetful"
        fields = ({"name": "table", "type": "string", "required": True},)

        def inspect(self, connection: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"name": "b", "type": "text"}, {"name": "a", "type": "text"}]

    case = plugin_case(
        Forgetful, "forgetful", {"table": "t"}, {"table": "t"}, ["a", "b"], {"table": "none"}
    )
    with pytest.raises(AssertionError, match="in order"):
        run(CHECKS["reads_a_real_source"](case))
    with pytest.raises(AssertionError, match="answered"):
        run(CHECKS["says_why_a_source_is_missing"](case))
