"""Where a postgres source may point, and what its failures say: host rules, outbound policy,
pools dropped with their source, details built from facts, through the HTTP API and the CLI."""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from litestar.testing import TestClient

from entrypoints.cli.main import main
from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings
from tests.builders import assert_problem, body, post_source
from tests.helpers import on_app
from tests.integration.conftest import Token


@pytest.mark.parametrize(
    "host",
    [
        "/var/run/postgresql",
        ",",
        "x.invalid,/var/run/postgresql",
        "reader@db.internal",
        "db.internal:5432",
        "a..b",
        ".",
        ".localhost",
        "a" * 64,
        "a" * 300,
        "0",
        "127.1",
        "2130706433",
        "\uff11\uff12\uff17.\uff10.\uff10.\uff11",
        "127\u30020\u30020\u30021",
    ],
)
def test_a_host_that_is_not_one_name_or_address_is_400(
    client: TestClient[Any], admin: dict[str, str], host: str
) -> None:
    connection = {**body()["connection"], "host": host}
    response = client.post("/v1/sources", json=body(connection=connection), headers=admin)
    problem = assert_problem(response, 400)
    assert [e["field"] for e in problem["errors"]] == ["connection.host"]


UNSPECIFIED = [
    "0.0.0.0",  # noqa: S104
    "::",
    "0:0:0:0:0:0:0:0",
    "::ffff:0.0.0.0",
    "::ffff:0:0",
    "0:0:0:0:0:ffff:0:0",
    "0000:0000:0000:0000:0000:FFFF:0000:0000",
    "::FfFf:0.0.0.0",
]


@pytest.mark.parametrize("host", UNSPECIFIED)
def test_an_unspecified_address_in_any_spelling_is_400_at_registration_and_update(
    client: TestClient[Any], admin: dict[str, str], host: str
) -> None:
    # Linux connects these to this machine itself: refused before any connection is tried.
    connection = {**body()["connection"], "host": host}
    response = client.post("/v1/sources", json=body(connection=connection), headers=admin)
    assert [e["field"] for e in assert_problem(response, 400)["errors"]] == ["connection.host"]
    response = client.post("/v1/sources/test", json=body(connection=connection), headers=admin)
    assert [e["field"] for e in assert_problem(response, 400)["errors"]] == ["connection.host"]
    record = post_source(client, admin, "orders")
    patch = {"connection": {"host": host, "password": "s3cret"}}
    response = client.patch(f"/v1/sources/{record['id']}", json=patch, headers=admin)
    assert [e["field"] for e in assert_problem(response, 400)["errors"]] == ["connection.host"]
    stored = client.get(f"/v1/sources/{record['id']}", headers=admin).json()
    assert stored["connection"]["host"] == "db.internal"


@pytest.fixture
def denying(settings: Settings) -> Iterator[TestClient[Any]]:
    """The same store, served by a process whose policy denies 127.0.0.2 and ::1."""
    container = build_container(attrs.evolve(settings, denied_networks="127.0.0.2/32,::1/128"))
    with TestClient(create_app(container)) as client:
        yield client
    container.shutdown_resources()


def test_the_outbound_policy_refuses_a_denied_host_at_registration(
    client: TestClient[Any], denying: TestClient[Any], admin: dict[str, str]
) -> None:
    connection = {**body()["connection"], "host": "127.0.0.2"}
    response = denying.post("/v1/sources", json=body(connection=connection), headers=admin)
    problem = assert_problem(response, 400)
    assert [e["field"] for e in problem["errors"]] == ["connection.host"]
    # What this process may not reach, another one with the default policy may register.
    assert client.post("/v1/sources", json=body(connection=connection), headers=admin).is_success


def test_an_inspection_of_a_denied_host_is_503_host_not_allowed(
    client: TestClient[Any], denying: TestClient[Any], admin: dict[str, str]
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen()
    listener.setblocking(False)
    with listener:
        connection = {
            **body()["connection"],
            "host": "127.0.0.2",
            "port": listener.getsockname()[1],
        }
        record = post_source(client, admin, "elsewhere", connection=connection)
        response = denying.get(f"/v1/sources/{record['id']}/schema", headers=admin)
        assert assert_problem(response, 503)["reason"] == "host_not_allowed"
        with pytest.raises(BlockingIOError):
            listener.accept()  # no connection was attempted


@pytest.mark.postgres
def test_deleting_a_source_drops_its_pooled_connections(
    client: TestClient[Any],
    container: Container,
    admin: dict[str, str],
    orders_table: dict[str, Any],
) -> None:
    record = post_source(client, admin, "orders", connection=orders_table)
    assert client.get(f"/v1/sources/{record['id']}/schema", headers=admin).status_code == 200
    # The server inspects on its event loop: its asyncio pools keep the connection.
    pools = container.source_pools()
    assert [idle for _, idle, _ in pools.sizes().values()] == [1]
    assert client.delete(f"/v1/sources/{record['id']}", headers=admin).status_code == 204
    assert pools.sizes() == {}


# --- what a failure says ------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("user", "password"),
    [("conn_ghost_pw", "conn_ghost_pw"), ("conn_ghost", "1"), ("conn_ghost", "conn")],
)
def test_a_detail_is_made_of_facts_and_never_masks_what_it_would_reveal(
    client: TestClient[Any],
    admin: dict[str, str],
    make_token: Token,
    orders_table: dict[str, Any],
    user: str,
    password: str,
) -> None:
    connection = {**orders_table, "user": user, "password": password}
    record = post_source(client, admin, "ghost", connection=connection)
    reader = {"Authorization": f"Bearer {make_token('sources:read')}"}
    problem = assert_problem(client.get(f"/v1/sources/{record['id']}/schema", headers=reader), 503)
    assert problem["reason"] == "auth_failed"
    assert "*" not in problem["detail"]
    assert problem["detail"] == (
        f"{orders_table['host']}:{orders_table['port']} has no role {user!r}"
    )


@pytest.mark.postgres
def test_sslmode_require_against_a_server_without_tls_says_so(
    client: TestClient[Any], admin: dict[str, str], orders_table: dict[str, Any], postgres_url: str
) -> None:
    with psycopg.connect(postgres_url) as conn:
        ssl = conn.execute("SHOW ssl").fetchone()
    if ssl != ("off",):
        pytest.skip("the test server offers TLS")
    record = post_source(client, admin, "tls", connection={**orders_table, "sslmode": "require"})
    problem = assert_problem(client.get(f"/v1/sources/{record['id']}/schema", headers=admin), 503)
    assert problem["reason"] == "ssl_unavailable"
    assert "does not offer SSL" in problem["detail"]
    assert "OperationalError" not in problem["detail"]


@pytest.fixture
def http_port() -> Iterator[int]:
    """A loopback port served by something that answers in HTTP, whatever it is sent."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            if not select.select([listener], [], [], 0.05)[0]:
                continue
            peer, _ = listener.accept()
            with peer:
                peer.recv(1024)
                peer.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


@pytest.mark.parametrize("sslmode", [None, "require", "disable"])
def test_an_http_port_is_not_a_postgresql_server(
    client: TestClient[Any], admin: dict[str, str], http_port: int, sslmode: str | None
) -> None:
    connection = {**body()["connection"], "host": "127.0.0.1", "port": http_port}
    if sslmode:
        connection["sslmode"] = sslmode
    record = post_source(client, admin, "web", connection=connection)
    problem = assert_problem(client.get(f"/v1/sources/{record['id']}/schema", headers=admin), 503)
    assert problem["reason"] == "protocol_error"
    assert "not as a PostgreSQL server" in problem["detail"]


def test_the_cli_says_what_happened(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    http_port: int,
) -> None:
    monkeypatch.setenv("TDB_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.delenv("TDB_TOKEN", raising=False)
    file = tmp_path / "web.json"
    connection = {**body()["connection"], "host": "127.0.0.1", "port": http_port}
    file.write_text(json.dumps(body(connection=connection)))
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["sources", "register", str(file), "--json"]) == 0
    source_id = json.loads(capsys.readouterr().out)["id"]
    assert main(["sources", "schema", source_id]) == 6  # the backend did not answer
    err = capsys.readouterr().err
    assert "protocol_error" in err
    assert "not as a PostgreSQL server" in err
    assert "OperationalError" not in err
    assert all(line.strip() not in ("error:", "error: ") for line in err.splitlines())


@pytest.mark.postgres
def test_a_target_with_no_connection_to_spare_is_503_busy_at_once(
    settings: Settings, orders_table: dict[str, Any]
) -> None:
    container = build_container(attrs.evolve(settings, source_pool_size=1))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(10)
    try:
        with TestClient(create_app(container)) as client:
            token = on_app(client, container.create_api_key(), "busy", (), OPERATOR).token
            admin = {"Authorization": f"Bearer {token}"}
            connection = {**orders_table, "port": listener.getsockname()[1]}
            url = f"/v1/sources/{post_source(client, admin, 'mute', connection=connection)['id']}"
            # The peer hangs up on the first connection: the target is known to fail.
            hang_up = threading.Thread(target=lambda: listener.accept()[0].close())
            hang_up.start()
            assert client.get(f"{url}/schema", headers=admin).json()["reason"] == "unreachable"
            hang_up.join()
            # The next one takes the target's only connection slot and waits for an answer.
            first = threading.Thread(
                target=client.get, args=(f"{url}/schema",), kwargs={"headers": admin}
            )
            first.start()
            peer, _ = listener.accept()
            response = client.get(f"{url}/schema", headers=admin)
            peer.close()
            first.join()
        assert assert_problem(response, 503)["reason"] == "busy"
        assert response.headers["retry-after"] == "1"
    finally:
        listener.close()
        container.shutdown_resources()


@pytest.mark.postgres
def test_an_update_of_the_connection_drops_its_pool_and_a_test_uses_the_pool(
    client: TestClient[Any],
    container: Container,
    admin: dict[str, str],
    orders_table: dict[str, Any],
) -> None:
    record = post_source(client, admin, "orders", connection=orders_table)
    url = f"/v1/sources/{record['id']}"
    # A connection test's inspection and the schema's share one pool per target.
    pools = container.source_pools()
    for _ in range(2):
        check = client.post(f"{url}/test", headers=admin).json()
        assert (check["ok"], check["reason"]) == (True, None)
    assert [(used, idle) for used, idle, _ in pools.sizes().values()] == [(0, 1)]
    # The description is not the connection: the pool stays.
    assert client.patch(url, json={"description": "x"}, headers=admin).status_code == 200
    assert [idle for _, idle, _ in pools.sizes().values()] == [1]
    response = client.patch(url, json={"connection": {"password": "rotated"}}, headers=admin)
    assert response.status_code == 200
    assert pools.sizes() == {}
    assert client.get(f"{url}/schema", headers=admin).status_code == 200
    assert [(used, idle) for used, idle, _ in pools.sizes().values()] == [(0, 1)]


def test_the_outbound_policy_holds_for_updates_and_connection_tests(
    client: TestClient[Any], denying: TestClient[Any], admin: dict[str, str]
) -> None:
    elsewhere = {**body()["connection"], "host": "127.0.0.2", "port": 9}
    record = post_source(client, admin, "elsewhere", connection=elsewhere)
    url = f"/v1/sources/{record['id']}"

    check = denying.post(f"{url}/test", headers=admin).json()
    assert (check["ok"], check["reason"]) == (False, "host_not_allowed")
    check = denying.post("/v1/sources/test", json=body(connection=elsewhere), headers=admin).json()
    assert (check["ok"], check["reason"]) == (False, "host_not_allowed")
    assert "127.0.0.2" in check["detail"]

    local = post_source(denying, admin, "local", connection={**elsewhere, "host": "127.0.0.3"})
    patch = {"connection": {"host": "127.0.0.2"}}
    response = denying.patch(f"/v1/sources/{local['id']}", json=patch, headers=admin)
    assert [e["field"] for e in assert_problem(response, 400)["errors"]] == ["connection.host"]
