"""The PostgreSQL connector on a real server: columns, odd names, privileges and every failure."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from adapters.connectors.postgres import PostgresConnector, backend_unavailable
from domain.errors import BackendUnavailable, InvalidConnection
from domain.sources import Column
from tests.helpers import Synced, reaching

PASSWORD = "hunter2-not-for-logs"
ODD_NAME = 'conn_it\'s "odd"'


@pytest.fixture(scope="module")
def base(postgres_url: str) -> dict[str, Any]:
    """The connection fields that reach the throwaway test database."""
    return reaching(postgres_url)


@pytest.fixture(scope="module")
def tables(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            """
            CREATE DOMAIN conn_positive AS integer CHECK (VALUE > 0);
            CREATE TYPE conn_mood AS ENUM ('sad', 'happy');
            CREATE TABLE conn_orders (
                id integer PRIMARY KEY,
                customer_id conn_positive NOT NULL,
                total numeric(12, 2),
                status character varying(20),
                created_at timestamp without time zone,
                paid_at timestamp with time zone,
                tags text[],
                mood conn_mood,
                dropped text
            );
            ALTER TABLE conn_orders DROP COLUMN dropped;
            CREATE VIEW conn_order_totals AS SELECT id, total FROM conn_orders;
            CREATE MATERIALIZED VIEW conn_order_ids AS SELECT * FROM conn_orders;
            CREATE SCHEMA conn_sales;
            CREATE TABLE conn_sales.regions (code character(2) NOT NULL, name text);
            CREATE TABLE conn_sales."Order Items" ("Item Id" bigint, "qty" smallint);
            CREATE TABLE conn_events (at date NOT NULL, n int) PARTITION BY RANGE (at);
            CREATE TABLE conn_nothing ();
            """
        )
        odd = sql.Identifier(ODD_NAME)
        conn.execute(sql.SQL("CREATE TABLE {} (x double precision)").format(odd))


@pytest.fixture
def connector() -> Any:
    return Synced(PostgresConnector(connect_timeout=2, statement_timeout_ms=2000))


def inspect(connector: Any, base: dict[str, Any], **fields: Any) -> list[Column]:
    return list(connector.inspect({**base, **fields}))


def failure(connector: Any, base: dict[str, Any], **fields: Any) -> BackendUnavailable:
    """The error inspection raises; it never shows the password it was given."""
    connection = {**base, **fields}
    with pytest.raises(BackendUnavailable) as caught:
        connector.inspect(connection)
    for password in {PASSWORD, str(connection.get("password") or PASSWORD)}:
        assert password not in str(caught.value)
        assert password not in caught.value.detail
    return caught.value


ORDERS = [
    Column("id", "integer", False),
    Column("customer_id", "integer", False),
    Column("total", "numeric", True),
    Column("status", "character varying", True),
    Column("created_at", "timestamp without time zone", True),
    Column("paid_at", "timestamp with time zone", True),
    Column("tags", "ARRAY", True),
    Column("mood", "USER-DEFINED", True),
]


@pytest.mark.postgres
@pytest.mark.usefixtures("tables")
class TestColumns:
    """What inspection reads from a server that answers."""

    def test_a_table_in_ordinal_order_with_data_types_and_nullability(
        self, connector: Any, base: dict[str, Any]
    ) -> None:
        assert inspect(connector, base, table="conn_orders") == ORDERS

    def test_a_view(self, connector: Any, base: dict[str, Any]) -> None:
        assert inspect(connector, base, table="conn_order_totals") == [
            Column("id", "integer", True),
            Column("total", "numeric", True),
        ]

    def test_a_materialized_view_is_typed_as_information_schema_types_a_table(
        self, connector: Any, base: dict[str, Any]
    ) -> None:
        columns = inspect(connector, base, table="conn_order_ids")
        assert [(c.name, c.type) for c in columns] == [(c.name, c.type) for c in ORDERS]

    def test_a_partitioned_table(self, connector: Any, base: dict[str, Any]) -> None:
        assert inspect(connector, base, table="conn_events") == [
            Column("at", "date", False),
            Column("n", "integer", True),
        ]

    def test_a_table_in_another_schema(self, connector: Any, base: dict[str, Any]) -> None:
        columns = inspect(connector, base, schema="conn_sales", table="regions")
        assert columns == [Column("code", "character", False), Column("name", "text", True)]

    def test_names_that_need_quoting_are_bound_not_quoted(
        self, connector: Any, base: dict[str, Any]
    ) -> None:
        columns = inspect(connector, base, schema="conn_sales", table="Order Items")
        assert columns == [Column("Item Id", "bigint", True), Column("qty", "smallint", True)]
        odd = inspect(connector, base, table=ODD_NAME)
        assert odd == [Column("x", "double precision", True)]

    def test_a_table_without_columns(self, connector: Any, base: dict[str, Any]) -> None:
        assert inspect(connector, base, table="conn_nothing") == []

    def test_an_injection_shaped_name_is_just_a_missing_table(
        self, connector: Any, base: dict[str, Any]
    ) -> None:
        evil = "conn_orders'; DROP TABLE conn_orders; --"
        assert failure(connector, base, table=evil).reason == "table_not_found"
        assert failure(connector, base, schema=evil, table="x").reason == "table_not_found"
        assert inspect(connector, base, table="conn_orders") == ORDERS

    def test_names_are_case_sensitive(self, connector: Any, base: dict[str, Any]) -> None:
        assert failure(connector, base, table="PG_CONN_ORDERS").reason == "table_not_found"


@pytest.fixture(scope="module")
def role(postgres_url: str, tables: None) -> Iterator[str]:
    """A login role with no privilege on the test tables but one column of one table."""
    name = f"tdb_reader_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(PASSWORD)
            )
        )
        conn.execute(
            sql.SQL("GRANT SELECT (name) ON conn_sales.regions TO {}").format(sql.Identifier(name))
        )
    yield name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def checks_passwords(postgres_url: str) -> bool:
    """Whether the test server checks passwords (CI's does; a trust-everything one does not)."""
    try:
        with psycopg.connect(postgres_url, password="wrong", connect_timeout=3):
            return False
    except psycopg.OperationalError:
        return True


@pytest.mark.postgres
@pytest.mark.usefixtures("tables")
class TestFailures:
    """Every way the backend cannot answer, each with its reason, none with the password."""

    def test_a_missing_table(self, connector: Any, base: dict[str, Any]) -> None:
        error = failure(connector, base, table="conn_nope")
        assert error.reason == "table_not_found"
        assert "conn_nope" in error.detail

    def test_a_missing_schema(self, connector: Any, base: dict[str, Any]) -> None:
        error = failure(connector, base, schema="conn_nope", table="regions")
        assert error.reason == "table_not_found"
        assert "schema" in error.detail

    def test_a_table_the_user_may_not_see(
        self, connector: Any, base: dict[str, Any], role: str
    ) -> None:
        error = failure(connector, base, user=role, password=PASSWORD, table="conn_orders")
        assert error.reason == "permission_denied"
        assert role in error.detail

    def test_a_user_sees_only_the_columns_it_has_a_privilege_on(
        self, connector: Any, base: dict[str, Any], role: str
    ) -> None:
        columns = inspect(
            connector, base, user=role, password=PASSWORD, schema="conn_sales", table="regions"
        )
        assert columns == [Column("name", "text", True)]

    def test_a_wrong_password_fails_authentication(
        self, connector: Any, base: dict[str, Any], role: str, checks_passwords: bool
    ) -> None:
        if not checks_passwords:
            pytest.skip("this server trusts every login: it takes any password")
        error = failure(connector, base, user=role, password=f"wrong-{PASSWORD}", table="t")
        assert error.reason == "auth_failed"

    def test_the_services_own_pgpassword_is_never_offered_to_a_source(
        self,
        connector: Any,
        base: dict[str, Any],
        checks_passwords: bool,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        if not checks_passwords or not base.get("password"):
            pytest.skip("this server trusts every login: it takes any password")
        monkeypatch.setenv("PGPASSWORD", base["password"])
        without_password = {k: v for k, v in base.items() if k != "password"}
        assert failure(connector, without_password, table="conn_orders").reason == "auth_failed"

    def test_a_missing_database(self, connector: Any, base: dict[str, Any]) -> None:
        error = failure(connector, base, dbname="conn_no_db", table="t")
        assert error.reason == "database_not_found"
        assert "conn_no_db" in error.detail

    def test_a_role_that_does_not_exist_fails_authentication(
        self, connector: Any, base: dict[str, Any]
    ) -> None:
        error = failure(connector, base, user="conn_nobody", password=PASSWORD, table="t")
        assert error.reason == "auth_failed"


class TestUnreachable:
    """Servers that are not there, or do not answer: no PostgreSQL needed."""

    def test_a_closed_port_is_unreachable(self, connector: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        error = failure(connector, {}, **_somewhere(port=port))
        assert error.reason == "unreachable"

    def test_an_unknown_host_is_unreachable(self, connector: Any) -> None:
        error = failure(connector, {}, **_somewhere(host="tdb-no-such-host.invalid"))
        assert error.reason in ("unreachable", "timeout")

    def test_a_server_that_never_answers_is_a_timeout_within_the_connect_timeout(self) -> None:
        connector = Synced(PostgresConnector(connect_timeout=1, statement_timeout_ms=1000))
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()  # the kernel completes handshakes; nothing ever answers them
            started = time.monotonic()
            error = failure(connector, {}, **_somewhere(port=silent.getsockname()[1]))
            elapsed = time.monotonic() - started
        assert error.reason == "timeout"
        assert elapsed < 1 + 1


def _somewhere(**fields: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": 5432,
        "dbname": "postgres",
        "user": "postgres",
        "password": PASSWORD,
        "table": "t",
        **fields,
    }


@pytest.mark.postgres
class TestErrorMapping:
    """The reason and the safe detail for errors met on a live server, and ones only read of."""

    def test_a_statement_timeout_is_a_timeout(self, postgres_url: str) -> None:
        with (
            psycopg.connect(postgres_url, options="-c statement_timeout=50") as conn,
            pytest.raises(psycopg.Error) as caught,
        ):
            conn.execute("SELECT pg_sleep(1)")
        error = backend_unavailable(caught.value, _somewhere())
        assert error.reason == "timeout"

    def test_insufficient_privilege_is_permission_denied(
        self, postgres_url: str, role: str
    ) -> None:
        with (
            psycopg.connect(postgres_url, user=role, password=PASSWORD) as conn,
            pytest.raises(psycopg.Error) as caught,
        ):
            conn.execute("SELECT * FROM conn_orders")
        assert backend_unavailable(caught.value, _somewhere()).reason == "permission_denied"

    @pytest.mark.parametrize(
        "exc",
        [
            psycopg.errors.InvalidPassword(f'password authentication failed for user "{PASSWORD}"'),
            psycopg.errors.InvalidAuthorizationSpecification("no pg_hba.conf entry"),
            psycopg.OperationalError(
                'connection failed: connection to server at "db", port 5432 failed: FATAL:  '
                'password authentication failed for user "reader"'
            ),
            psycopg.OperationalError("fe_sendauth: no password supplied"),
        ],
    )
    def test_rejected_credentials_are_auth_failed(self, exc: psycopg.Error) -> None:
        # Trust authentication on the test server accepts any password: these come from the
        # messages a password-checking server sends, on real psycopg error classes.
        error = backend_unavailable(exc, _somewhere())
        assert error.reason == "auth_failed"
        assert PASSWORD not in error.detail

    @pytest.mark.parametrize(
        ("message", "reason"),
        [
            ("could not translate host name \"db\" to address", "unreachable"),
            ('connection to server at "10.0.0.1", port 5432 failed: No route to host',
             "unreachable"),
            ("server closed the connection unexpectedly", "unreachable"),
            ("connection timeout expired", "timeout"),
            ("SSL SYSCALL error: something new", "backend_error"),
        ],
    )  # fmt: skip
    def test_connection_failures_are_read_from_their_message(
        self, message: str, reason: str
    ) -> None:
        error = backend_unavailable(psycopg.OperationalError(message), _somewhere())
        assert error.reason == reason
        assert PASSWORD not in error.detail

    def test_a_password_echoed_by_an_error_is_masked(self) -> None:
        exc = psycopg.errors.SyntaxError(f"syntax error at or near {PASSWORD}")
        error = backend_unavailable(exc, _somewhere())
        assert error.reason == "backend_error"
        assert PASSWORD not in error.detail


class TestValidation:
    """The declared fields, checked without a server."""

    def test_defaults_are_filled(self, connector: Any) -> None:
        given = {"host": "db", "dbname": "d", "user": "u", "table": "t"}
        assert connector.validate(given) == {**given, "port": 5432, "schema": "public"}

    def test_an_empty_password_and_every_sslmode_are_accepted(self, connector: Any) -> None:
        given = {"host": "db", "dbname": "d", "user": "u", "table": "t", "password": ""}
        for mode in ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"):
            assert connector.validate({**given, "sslmode": mode})["sslmode"] == mode

    @pytest.mark.parametrize(
        ("fields", "bad"),
        [
            ({"port": 0}, "connection.port"),
            ({"port": 65536}, "connection.port"),
            ({"port": "5432"}, "connection.port"),
            ({"port": True}, "connection.port"),
            ({"sslmode": "sometimes"}, "connection.sslmode"),
            ({"host": ""}, "connection.host"),
            ({"table": 7}, "connection.table"),
            ({"dsn": "host=evil"}, "connection.dsn"),
        ],
    )
    def test_bad_fields_are_named(self, connector: Any, fields: dict[str, Any], bad: str) -> None:
        given = {"host": "db", "dbname": "d", "user": "u", "table": "t", **fields}
        with pytest.raises(InvalidConnection) as caught:
            connector.validate(given)
        assert [e.field for e in caught.value.errors] == [bad]
