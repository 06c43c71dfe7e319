"""The mysql connector against a real MariaDB/MySQL server, and against loopback servers that
misbehave (a silent one, one that is no MySQL, one that asks for the password in clear)."""

from __future__ import annotations

import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.connectors.mysql import MysqlConnector
from adapters.connectors.outbound import OutboundPolicy, parse_networks
from domain.errors import BackendUnavailable, HostNotAllowed
from domain.sources import Column
from tests.helpers import mysql_execute, run

pytestmark = pytest.mark.mysql

PASSWORD = "pw-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def shop(mysql_database: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Tables of every common type, and a user of their own with a password."""
    user = f"tdb_r_{secrets.token_hex(3)}"
    mysql_execute(
        mysql_database,
        """CREATE TABLE items (
            id int NOT NULL PRIMARY KEY, sku varchar(20) NOT NULL, price decimal(10,2),
            made datetime, seen timestamp NULL, day date, doc json, state enum('a','b'),
            flag tinyint(1), big bigint unsigned, ratio double, blob_ blob, note text)""",
        'CREATE TABLE `it\'s "odd"` (x int)',
        "CREATE VIEW cheap AS SELECT id, price FROM items",
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'",
        f"GRANT SELECT ON `{mysql_database['dbname']}`.* TO '{user}'@'%'",
    )
    try:
        yield {**mysql_database, "user": user, "password": PASSWORD}
    finally:
        mysql_execute(mysql_database, f"DROP USER IF EXISTS '{user}'@'%'")


def inspect(connector: MysqlConnector, connection: dict[str, Any]) -> list[Column]:
    return list(run(connector.inspect(run(connector.validate(connection)))))


def failure(connector: MysqlConnector, connection: dict[str, Any]) -> BackendUnavailable:
    with pytest.raises(BackendUnavailable) as caught:
        inspect(connector, connection)
    assert PASSWORD not in str(caught.value)
    return caught.value


def test_columns_in_ordinal_order_with_the_servers_lower_case_data_types(
    shop: dict[str, Any],
) -> None:
    columns = inspect(MysqlConnector(), {**shop, "table": "items"})
    assert [(c.name, c.type, c.nullable) for c in columns[:9]] == [
        ("id", "int", False),
        ("sku", "varchar", False),
        ("price", "decimal", True),
        ("made", "datetime", True),
        ("seen", "timestamp", True),
        ("day", "date", True),
        # MariaDB stores JSON as longtext with a check, and says so; MySQL says json.
        ("doc", columns[6].type if columns[6].type in ("json", "longtext") else "json", True),
        ("state", "enum", True),
        ("flag", "tinyint", True),
    ]
    assert [c.type for c in columns[9:]] == ["bigint", "double", "blob", "text"]
    assert [c.name for c in inspect(MysqlConnector(), {**shop, "table": "cheap"})] == [
        "id",
        "price",
    ]


def test_names_are_bound_as_parameters(shop: dict[str, Any]) -> None:
    assert inspect(MysqlConnector(), {**shop, "table": 'it\'s "odd"'}) == [Column("x", "int", True)]
    assert failure(MysqlConnector(), {**shop, "table": "x' OR '1'='1"}).reason == "table_not_found"


def test_each_failure_has_its_reason(shop: dict[str, Any]) -> None:
    connector = MysqlConnector(connect_timeout=2)
    assert failure(connector, {**shop, "table": "nope"}).reason == "table_not_found"
    assert failure(connector, {**shop, "table": "items", "dbname": "tdb_no_such_db"}).reason in (
        "database_not_found",
        "auth_failed",  # a user who may not see a database is told no more than that
    )
    wrong = failure(connector, {**shop, "table": "items", "password": "wrong-" + PASSWORD})
    assert wrong.reason == "auth_failed"
    assert failure(connector, {**shop, "table": "items", "ssl_mode": "required"}).reason in (
        "ssl_unavailable",
        "ssl_failed",
    )


def test_a_pooled_session_is_reused_and_replaced_when_the_server_drops_it(
    shop: dict[str, Any], mysql_database: dict[str, Any]
) -> None:
    connector = MysqlConnector()
    connection = {**shop, "table": "items"}
    first = inspect(connector, connection)
    assert inspect(connector, connection) == first
    sizes = connector._pools.sizes()
    assert [idle for _, idle, _ in sizes.values()] == [1]
    mysql_execute(mysql_database, *_kill_statements(mysql_database, shop["user"]))
    assert inspect(connector, connection) == first
    run(connector.forget(connection))
    assert connector._pools.sizes() == {}


def _kill_statements(admin: dict[str, Any], user: str) -> list[str]:
    import pymysql

    with (
        pymysql.connect(
            host=admin["host"], port=admin["port"], user=admin["user"], password=admin["password"]
        ) as conn,
        conn.cursor() as cursor,
    ):
        cursor.execute("SELECT ID FROM information_schema.processlist WHERE USER = %s", (user,))
        return [f"KILL {row[0]}" for row in cursor.fetchall()]


def test_the_outbound_policy_is_checked_before_any_connection(shop: dict[str, Any]) -> None:
    policy = OutboundPolicy(denied=parse_networks("127.0.0.0/8"))
    connector = MysqlConnector(policy=policy)
    connection = {**shop, "table": "items"}
    with pytest.raises(HostNotAllowed):
        run(connector.validate(connection))
    # A source registered before the policy changed: its inspection connects to nothing.
    with pytest.raises(BackendUnavailable) as caught:
        run(connector.inspect(connection))
    assert caught.value.reason == "host_not_allowed"
    assert connector._pools.sizes() == {}


# --- servers on loopback that are not well-behaved MySQL servers -----------------------------


class LoopbackServer:
    """Accepts one connection at a time; `greet` says what it sends; it records what it gets."""

    def __init__(self, greet: bytes | None, switch_to_cleartext: bool = False) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.greet = greet
        self.switch = switch_to_cleartext
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            peer, _ = self.sock.accept()
        except OSError:
            return
        with peer:
            peer.settimeout(5)
            if self.greet is not None:
                peer.sendall(self.greet)
            try:
                while chunk := peer.recv(4096):
                    self.received += chunk
                    if self.switch:
                        peer.sendall(_packet(2, b"\xfemysql_clear_password\x00"))
                        self.switch = False
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=5)


def _packet(sequence: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload


def _handshake(plugin: bytes) -> bytes:
    capabilities = 0x1 | 0x8 | 0x200 | 0x8000 | 0x80000
    payload = (
        b"\x0a10.11.99-loopback\x00"
        + struct.pack("<I", 7)
        + b"abcdefgh\x00"
        + struct.pack("<H", capabilities & 0xFFFF)
        + b"\x21"
        + struct.pack("<H", 2)
        + struct.pack("<H", capabilities >> 16)
        + b"\x15"
        + b"\x00" * 10
        + b"ijklmnopqrst\x00"
        + plugin
        + b"\x00"
    )
    return _packet(0, payload)


@pytest.fixture
def loopback() -> Iterator[Any]:
    servers: list[LoopbackServer] = []

    def start(greet: bytes | None, switch: bool = False) -> LoopbackServer:
        servers.append(LoopbackServer(greet, switch))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _at(server: LoopbackServer, **more: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": server.port,
        "dbname": "d",
        "user": "reader",
        "password": PASSWORD,
        "table": "t",
        **more,
    }


def test_a_server_asking_for_the_password_in_clear_gets_nothing(loopback: Any) -> None:
    server = loopback(_handshake(b"mysql_clear_password"), switch=True)
    caught = failure(MysqlConnector(connect_timeout=2), _at(server, ssl_mode="disabled"))
    assert caught.reason == "auth_failed"
    assert "in clear" in caught.detail
    assert PASSWORD.encode() not in server.received


def test_a_server_that_is_not_mysql_is_a_protocol_error(loopback: Any) -> None:
    server = loopback(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    assert failure(MysqlConnector(connect_timeout=2), _at(server)).reason in (
        "protocol_error",
        "unreachable",
    )


def test_a_silent_server_times_out_within_the_budget(loopback: Any) -> None:
    server = loopback(None)
    start = time.monotonic()
    assert failure(MysqlConnector(connect_timeout=1), _at(server)).reason == "timeout"
    assert time.monotonic() - start < 1 + 0.5 + 0.5


def test_the_connection_goes_to_the_address_the_policy_checked(shop: dict[str, Any]) -> None:
    looked_up: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    connector = MysqlConnector(policy=OutboundPolicy(resolver=resolver))
    # A name no DNS knows: the session can only have gone to the address the policy gave.
    connection = {**shop, "host": "mysql.tdb-tests.invalid", "table": "items"}
    assert [c.name for c in inspect(connector, connection)][:2] == ["id", "sku"]
    assert set(looked_up) == {"mysql.tdb-tests.invalid"}
