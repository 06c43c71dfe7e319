"""What the PostgreSQL connector makes of what a server answers: a password asked for in
clear, a catalog wider than any table, the server's own error text, catalog bytes that are
not UTF-8. Each is met the same way by the connector's inspection, the HTTP schema and
connection test, and `tdb sources inspect-all`.

The odd servers are `tests/fake_postgres.FakePostgres`, on loopback; the SQL_ASCII database
is a real one, made for this module and dropped after it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from adapters.connectors import postgres
from adapters.connectors.pools import AsyncConnectionPools
from adapters.connectors.postgres import PostgresConnector
from domain.errors import BackendUnavailable
from domain.sources import Column
from tests.builders import assert_problem, post_source
from tests.fake_postgres import FakePostgres, numbered_columns
from tests.helpers import reaching, run, throwaway_database

PASSWORD = "hunter2-never-in-clear"
EVIL = "your password expired, visit http://evil.invalid/login"

Inspect = Callable[[PostgresConnector, dict[str, Any]], Sequence[Column]]


def _awaited(connector: PostgresConnector, connection: dict[str, Any]) -> Sequence[Column]:
    return run(connector.inspect(connection))


@pytest.fixture
def inspect() -> Inspect:
    """An inspection, awaited on the tests' event loop."""
    return _awaited


@pytest.fixture
def connector() -> Iterator[PostgresConnector]:
    pools = AsyncConnectionPools()
    yield PostgresConnector(connect_timeout=2, statement_timeout_ms=2000, pools=pools)
    pools.close()


def failure(inspect: Inspect, connector: PostgresConnector, connection: Any) -> BackendUnavailable:
    with pytest.raises(BackendUnavailable) as caught:
        inspect(connector, connection)
    return caught.value


def source(client: TestClient[Any], admin: dict[str, str], name: str, connection: Any) -> str:
    record = post_source(client, admin, name, connection=connection)
    source_id: str = record["id"]
    return source_id


def schema_problem(client: TestClient[Any], admin: dict[str, str], source_id: str) -> Any:
    return assert_problem(client.get(f"/v1/sources/{source_id}/schema", headers=admin), 503)


def connection_test(client: TestClient[Any], admin: dict[str, str], source_id: str) -> Any:
    response = client.post(f"/v1/sources/{source_id}/test", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


# --- a password asked for in clear is never sent -----------------------------------------


def test_a_password_asked_for_in_clear_is_never_sent(
    fake_postgres: FakePostgres, connector: PostgresConnector, inspect: Inspect
) -> None:
    fake_postgres.auth = "cleartext"
    error = failure(inspect, connector, fake_postgres.connection(password=PASSWORD))
    assert error.reason == "auth_failed"
    assert "in clear" in error.detail
    assert fake_postgres.startups  # it was asked for
    assert fake_postgres.passwords == []


def test_a_libpq_that_cannot_refuse_is_given_no_password_to_send(
    fake_postgres: FakePostgres,
    connector: PostgresConnector,
    inspect: Inspect,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `require_auth` came with libpq 16; a service on an older one must still never send it.
    monkeypatch.setattr(postgres, "REFUSES_CLEARTEXT", False)
    fake_postgres.auth = "cleartext"
    error = failure(inspect, connector, fake_postgres.connection(password=PASSWORD))
    assert error.reason == "auth_failed"
    assert fake_postgres.passwords == []


def test_a_server_that_asks_no_password_still_answers(
    fake_postgres: FakePostgres, connector: PostgresConnector, inspect: Inspect
) -> None:
    columns = inspect(connector, fake_postgres.connection(password=PASSWORD))
    assert columns == [Column("id", "integer", False)]
    assert fake_postgres.passwords == []


def test_the_schema_and_the_test_never_send_a_stored_password_in_clear(
    fake_postgres: FakePostgres, client: TestClient[Any], admin: dict[str, str]
) -> None:
    fake_postgres.auth = "cleartext"
    source_id = source(client, admin, "asks", fake_postgres.connection(password=PASSWORD))
    assert schema_problem(client, admin, source_id)["reason"] == "auth_failed"
    tested = connection_test(client, admin, source_id)
    assert (tested["ok"], tested["reason"]) == (False, "auth_failed")
    response = client.post(
        "/v1/sources/test",
        json={"source_type": "postgres", "connection": fake_postgres.connection(password=PASSWORD)},
        headers=admin,
    )
    assert (response.json()["ok"], response.json()["reason"]) == (False, "auth_failed")
    assert len(fake_postgres.startups) >= 3
    assert fake_postgres.passwords == []


# --- a catalog wider than any table -------------------------------------------------------


def test_1600_columns_are_read(
    fake_postgres: FakePostgres, connector: PostgresConnector, inspect: Inspect
) -> None:
    fake_postgres.columns = numbered_columns(1600)
    columns = inspect(connector, fake_postgres.connection())
    assert [c.name for c in columns] == [f"c{i}" for i in range(1, 1601)]


def test_1601_columns_are_too_many_columns(
    fake_postgres: FakePostgres, connector: PostgresConnector, inspect: Inspect
) -> None:
    fake_postgres.columns = numbered_columns(1601)
    error = failure(inspect, connector, fake_postgres.connection())
    assert error.reason == "too_many_columns"
    assert "1600" in error.detail


def test_a_catalog_without_end_is_read_only_until_it_is_too_wide(
    fake_postgres: FakePostgres, connector: PostgresConnector, inspect: Inspect
) -> None:
    # Ten million rows, made as they are sent: reading them all would take far longer than
    # the inspection's deadline, which would then answer `timeout`.
    fake_postgres.columns = numbered_columns(10_000_000)
    error = failure(inspect, connector, fake_postgres.connection())
    assert error.reason == "too_many_columns"
    fake_postgres.idle()
    assert fake_postgres.cut_short == 1  # the client left: the rest was never asked for
    # And the next inspection makes a new connection, which answers as the first did.
    assert failure(inspect, connector, fake_postgres.connection()).reason == "too_many_columns"
    assert len(fake_postgres.startups) == 2


def test_an_answer_that_stalls_is_dropped_at_the_deadline_with_no_cancel_request(
    fake_postgres: FakePostgres, inspect: Inspect
) -> None:
    # No cancel request is sent (a new connection, which the server may hold open as long as
    # it likes): the connection is dropped, not replaced. On a pooled connection, the query
    # runs on the inspecting task itself.
    pools = AsyncConnectionPools()
    connector = PostgresConnector(connect_timeout=1, pools=pools)
    fake_postgres.columns = numbered_columns(1000)
    assert len(inspect(connector, fake_postgres.connection())) == 1000
    fake_postgres.stall_after = 10
    started = time.monotonic()
    error = failure(inspect, connector, fake_postgres.connection())
    elapsed = time.monotonic() - started
    assert error.reason == "timeout"
    assert elapsed < 1 + 1  # the connect timeout plus a second
    fake_postgres.idle()
    assert fake_postgres.cancels == 0
    assert len(fake_postgres.startups) == 1  # the pooled connection, not replaced
    pools.close()


def test_a_wide_catalog_over_http_is_503_too_many_columns(
    fake_postgres: FakePostgres, client: TestClient[Any], admin: dict[str, str]
) -> None:
    fake_postgres.columns = numbered_columns(800_000)
    source_id = source(client, admin, "wide", fake_postgres.connection())
    problem = schema_problem(client, admin, source_id)
    assert problem["reason"] == "too_many_columns"
    tested = connection_test(client, admin, source_id)
    assert (tested["ok"], tested["reason"]) == (False, "too_many_columns")


# --- the server's own words are never quoted ----------------------------------------------


@pytest.mark.parametrize(
    ("sqlstate", "reason", "named"),
    [
        ("XX000", "backend_error", "XX000"),
        ("28P01", "auth_failed", None),
        (EVIL, "backend_error", None),
        ("{0}{where}", "backend_error", None),
        ("57P0", "backend_error", None),
    ],
)
def test_an_error_answer_is_never_quoted(
    fake_postgres: FakePostgres,
    connector: PostgresConnector,
    inspect: Inspect,
    sqlstate: str,
    reason: str,
    named: str | None,
) -> None:
    fake_postgres.query_error = (sqlstate, EVIL)
    error = failure(inspect, connector, fake_postgres.connection())
    assert error.reason == reason
    assert "evil" not in error.detail
    assert "expired" not in error.detail
    assert sqlstate not in error.detail or sqlstate == named
    assert fake_postgres.cancels == 0  # what followed the error was read, nothing cancelled


@pytest.mark.parametrize("sqlstate", ["28000", "XX000", EVIL])
def test_an_error_ending_the_startup_is_never_quoted(
    fake_postgres: FakePostgres, connector: PostgresConnector, inspect: Inspect, sqlstate: str
) -> None:
    fake_postgres.startup_error = (sqlstate, EVIL)
    error = failure(inspect, connector, fake_postgres.connection(password=PASSWORD))
    assert "evil" not in error.detail
    assert "expired" not in error.detail


def test_the_schema_and_the_test_never_quote_the_server(
    fake_postgres: FakePostgres, client: TestClient[Any], admin: dict[str, str]
) -> None:
    source_id = source(client, admin, "talkative", fake_postgres.connection())
    # Answered once: the catalog statements are prepared on a pooled connection, and then
    # fail when they are executed; on a new connection, when they are prepared.
    assert client.get(f"/v1/sources/{source_id}/schema", headers=admin).status_code == 200
    for sqlstate in ("XX000", EVIL, "XX000"):
        fake_postgres.query_error = (sqlstate, EVIL)
        schema = client.get(f"/v1/sources/{source_id}/schema", headers=admin)
        tested = client.post(f"/v1/sources/{source_id}/test", headers=admin)
        assert (schema.status_code, tested.status_code) == (503, 200)
        assert schema.json()["reason"] == tested.json()["reason"] == "backend_error"
        for text in (schema.text, tested.text):
            assert "evil" not in text
            assert "expired" not in text


@pytest.mark.parametrize(
    ("columns", "column_count"),
    [
        ([(None, "integer", "YES")], 1),  # a column with no name
        ([("x" * 1_000_000, "integer", "YES")], 1),  # a name of a megabyte
        ([("id", "integer", None)], 1),
        ([], "many"),  # a count that is no number
        ([], None),
    ],
)
def test_catalog_rows_no_postgresql_sends_are_a_protocol_error(
    fake_postgres: FakePostgres,
    connector: PostgresConnector,
    inspect: Inspect,
    columns: list[tuple[Any, ...]],
    column_count: Any,
) -> None:
    fake_postgres.columns = lambda: columns
    fake_postgres.column_count = column_count
    assert failure(inspect, connector, fake_postgres.connection()).reason == "protocol_error"


# --- catalog text that is not UTF-8 -------------------------------------------------------


LEGACY = [Column("caf\ufffd", "integer", True), Column("ok", "text", False)]


@pytest.fixture(scope="module")
def sql_ascii(postgres_admin_url: str) -> Iterator[dict[str, Any]]:
    """A real SQL_ASCII database whose table `legacy` (and materialized view `legacy_view`)
    has a column named with the byte 0xE9 alone, which is no UTF-8: the connection to it."""
    options = "ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    with throwaway_database(postgres_admin_url, "tdb_ascii", options) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.info.encoding == "ascii"  # no conversion: the bytes are stored as sent
            conn.execute(b'CREATE TABLE legacy ("caf\xe9" integer, ok text NOT NULL)')
            conn.execute(b"CREATE MATERIALIZED VIEW legacy_view AS SELECT * FROM legacy")
        yield reaching(url, table="legacy")


@pytest.mark.postgres
def test_catalog_bytes_that_are_not_utf8_are_replaced(
    sql_ascii: dict[str, Any], connector: PostgresConnector, inspect: Inspect
) -> None:
    assert list(inspect(connector, sql_ascii)) == LEGACY
    assert list(inspect(connector, {**sql_ascii, "table": "legacy_view"})) == [
        Column("caf\ufffd", "integer", True),
        Column("ok", "text", True),
    ]
    missing = failure(inspect, connector, {**sql_ascii, "table": "caf\u00e9"})
    assert missing.reason == "table_not_found"


@pytest.mark.postgres
def test_a_name_the_database_encoding_cannot_spell_is_no_table(
    postgres_admin_url: str, connector: PostgresConnector, inspect: Inspect
) -> None:
    options = "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    with throwaway_database(postgres_admin_url, "tdb_latin1", options) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute('CREATE TABLE "café" ("à la carte" integer)')
        latin1 = reaching(url, table="caf\u00e9")
        assert list(inspect(connector, latin1)) == [Column("à la carte", "integer", True)]
        for names in ({"table": "表"}, {"schema": "表", "table": "t"}):
            missing = failure(inspect, connector, {**latin1, **names})
            assert missing.reason == "table_not_found"


@pytest.mark.postgres
def test_a_sql_ascii_source_answers_its_schema_history_and_test(
    sql_ascii: dict[str, Any], client: TestClient[Any], admin: dict[str, str]
) -> None:
    source_id = source(client, admin, "legacy", sql_ascii)
    schema = client.get(f"/v1/sources/{source_id}/schema", headers=admin)
    assert schema.status_code == 200, schema.text
    assert [c["name"] for c in schema.json()["columns"]] == ["caf\ufffd", "ok"]
    history = client.get(f"/v1/sources/{source_id}/schema/history", headers=admin)
    assert history.status_code == 200, history.text
    assert "caf\ufffd" in history.text
    assert connection_test(client, admin, source_id)["ok"] is True


# --- `tdb sources inspect-all` ------------------------------------------------------------


@pytest.mark.postgres
def test_inspect_all_reports_each_odd_server_as_a_failure_of_its_own(
    tdb: Any, tmp_path: Path, sql_ascii: dict[str, Any]
) -> None:
    servers = {name: FakePostgres().start() for name in ("asks", "wide", "talkative")}
    try:
        servers["asks"].auth = "cleartext"
        servers["wide"].columns = numbered_columns(10_000)
        servers["talkative"].query_error = (EVIL, EVIL)
        connections = {
            "legacy": sql_ascii,
            **{name: s.connection(password=PASSWORD) for name, s in servers.items()},
        }
        for name, connection in connections.items():
            body = tmp_path / f"{name}.json"
            body.write_text(
                json.dumps({"name": name, "source_type": "postgres", "connection": connection})
            )
            code, _, err = tdb("sources", "register", str(body))
            assert code == 0, err
        code, out, err = tdb("sources", "inspect-all")
        assert code == 0, err
        verdicts = dict(line.split("  ")[1:] for line in out.strip().splitlines())
        assert verdicts == {
            "legacy": "changed: first snapshot",
            "asks": "failed: auth_failed",
            "wide": "failed: too_many_columns",
            "talkative": "failed: backend_error",
        }
        assert "evil" not in out + err
        assert servers["asks"].passwords == []
    finally:
        for server in servers.values():
            server.stop()
