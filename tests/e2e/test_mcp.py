"""The MCP server through the SDK's own client: over Streamable HTTP against a real `tdb serve`,
and over stdio against a `tdb mcp` process, both on one SQLite store."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from entrypoints.container import build_container
from entrypoints.operator import OPERATOR
from entrypoints.settings import Settings
from entrypoints.startup import stop_worker
from tests.e2e.conftest import TdbServer, tdb_executable

READ_TOOLS = {"list_sources", "get_source", "get_schema", "get_schema_history", "find_columns"}
WRITE_TOOLS = {"register_source", "update_source", "delete_source"}
MASK = "********"


class World:
    """One server and its store, and a key per set of scopes."""

    def __init__(self, server: TdbServer, env: dict[str, str]) -> None:
        self.server, self.env = server, env
        self.admin = server.admin_token() or ""
        self.keys = {
            scopes: self.key(*scopes.split())
            for scopes in ("sources:read", "sources:read sources:write", "audit:read")
        }

    def key(self, *scopes: str) -> str:
        """A new key's token, made on the server's store as `tdb keys create` does (in this
        process: a `tdb` process costs seconds on a loaded machine)."""
        settings = Settings.from_env(self.env, csv_root=str(self.server.workdir / "data"))
        container = build_container(settings)

        async def create() -> str:
            try:
                name = "-".join(scopes).replace(":", "_")
                return (await container.create_api_key()(name, scopes, OPERATOR)).token
            finally:
                await stop_worker(container)

        try:
            return asyncio.run(create())
        finally:
            container.shutdown_resources()

    def http(self, token: str) -> Client:
        headers = {"Authorization": f"Bearer {token}"}
        transport = streamable_http_client(
            f"{self.server.url}/mcp", http_client=httpx2.AsyncClient(headers=headers)
        )
        return Client(transport)

    def stdio(self, token: str | None = None) -> Client:
        args = ["mcp", *(["--token", token] if token else [])]
        env = {**os.environ, **self.env}
        params = StdioServerParameters(
            command=tdb_executable(), args=args, env=env, cwd=str(self.server.workdir)
        )
        return Client(params)

    def get(self, path: str, token: str) -> Any:
        response = httpx.get(
            f"{self.server.url}{path}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("mcp")
    (workdir / "data").mkdir()
    (workdir / "data" / "orders.csv").write_text("id,Customer_ID,total\n1,7,9.5\n")
    env = {"TDB_DATABASE_URL": f"sqlite:///{workdir / 'tdb.sqlite3'}", "TDB_CSV_ROOT": "data"}
    server = TdbServer(workdir, env).start()
    try:
        yield World(server, env)
    finally:
        server.stop()


def talk(client: Client, conversation: Callable[[Client], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        async with client as connected:
            return await conversation(connected)

    return asyncio.run(run())


def tools_of(client: Client) -> dict[str, Any]:
    async def listed(c: Client) -> dict[str, Any]:
        return {t.name: t for t in (await c.list_tools()).tools}

    result: dict[str, Any] = talk(client, listed)
    return result


def calls(client: Client, *steps: tuple[str, dict[str, Any]]) -> list[Any]:
    async def made(c: Client) -> list[Any]:
        return [await c.call_tool(name, arguments) for name, arguments in steps]

    result: list[Any] = talk(client, made)
    return result


def register(world: World, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "source_type": "csv", "connection": {"path": "orders.csv"}, **fields}
    response = httpx.post(
        f"{world.server.url}/v1/sources",
        json=body,
        headers={"Authorization": f"Bearer {world.admin}"},
    )
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def test_each_key_is_listed_the_tools_its_scopes_allow(world: World) -> None:
    every = tools_of(world.http(world.admin))
    assert set(every) == READ_TOOLS | WRITE_TOOLS | {"test_connection", "list_events"}
    for tool in every.values():
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema["type"] == "object"
        assert tool.meta["tdb/scope"] in {"sources:read", "sources:write", "audit:read"}
    assert every["update_source"].input_schema["required"] == ["source_id", "if_match", "patch"]
    assert "if_match" in every["delete_source"].input_schema["required"]
    assert set(tools_of(world.http(world.keys["sources:read"]))) == READ_TOOLS | {"test_connection"}
    assert set(tools_of(world.http(world.keys["audit:read"]))) == {"list_events"}
    writer = set(tools_of(world.http(world.keys["sources:read sources:write"])))
    assert writer >= WRITE_TOOLS


def test_answers_mask_secrets_whatever_the_scopes(world: World) -> None:
    record = register(
        world,
        "pg_masked",
        source_type="postgres",
        connection={
            "host": "127.0.0.1",
            "dbname": "x",
            "user": "u",
            "table": "t",
            "password": "hunter2-secret",
        },
    )
    assert world.get(f"/v1/sources/{record['id']}", world.admin)["connection"]["password"] == (
        "hunter2-secret"
    )
    got, listed = calls(
        world.http(world.admin),
        ("get_source", {"source_id": record["id"]}),
        ("list_sources", {"name_prefix": "pg_"}),
    )
    assert not got.is_error
    assert got.structured_content["connection"]["password"] == MASK
    assert "hunter2" not in got.content[0].text + listed.content[0].text
    # The MCP read showed no secret, so it recorded no secrets_read.
    events = world.get(f"/v1/events?source_id={record['id']}", world.admin)
    assert [e["action"] for e in events] == ["source.registered", "source.secrets_read"]


def test_errors_are_tool_results_with_the_problem(world: World) -> None:
    record = register(world, "errors_here")
    missing, forbidden, unconditional, stale, unknown = calls(
        world.http(world.keys["sources:read sources:write"]),
        ("get_source", {"source_id": "00000000-0000-0000-0000-000000000000"}),
        ("list_events", {}),
        ("update_source", {"source_id": record["id"], "patch": {"description": "x"}}),
        ("delete_source", {"source_id": record["id"], "if_match": 7}),
        ("find_columns", {"name": "id", "nme": "x"}),
    )
    assert all(r.is_error for r in (missing, forbidden, unconditional, stale, unknown))
    assert missing.structured_content["type"] == "urn:tdb:problem:source-not-found"
    assert missing.structured_content["status"] == 404
    assert forbidden.structured_content["required_scope"] == "audit:read"
    assert unconditional.structured_content["errors"] == [
        {"field": "if_match", "message": "is required"}
    ]
    assert stale.structured_content["current_version"] == 1
    assert stale.structured_content["status"] == 412
    assert unknown.structured_content["errors"][0]["field"] == "nme"


def test_acts_are_audited_as_through_http_and_columns_are_found(world: World) -> None:
    token = world.keys["sources:read sources:write"]
    key_id = token.split("_")[1]
    registered = calls(
        world.http(token),
        (
            "register_source",
            {"name": "orders_mcp", "source_type": "csv", "connection": {"path": "orders.csv"}},
        ),
    )[0]
    assert not registered.is_error, registered.content
    ident = registered.structured_content["id"]
    schema, found, updated, deleted = calls(
        world.http(token),
        ("get_schema", {"source_id": ident}),
        ("find_columns", {"name": "customer_*"}),
        ("update_source", {"source_id": ident, "if_match": 1, "patch": {"description": "d"}}),
        ("delete_source", {"source_id": ident, "if_match": 2}),
    )
    assert [c["name"] for c in schema.structured_content["columns"]] == [
        "id",
        "Customer_ID",
        "total",
    ]
    matches = found.structured_content["columns"]
    assert {
        "source_name": "orders_mcp",
        "column": {"name": "Customer_ID", "type": "integer", "nullable": False},
    }.items() <= next(m for m in matches if m["source_id"] == ident).items()
    assert updated.structured_content["version"] == 2
    assert deleted.structured_content == {"deleted": True, "source_id": ident}
    events = world.get(f"/v1/events?source_id={ident}", world.admin)
    assert [(e["action"], e["actor"]) for e in events] == [
        (action, f"tdbk_{key_id}")
        for action in (
            "source.registered",
            "source.schema_changed",
            "source.updated",
            "source.deleted",
        )
    ]


def test_a_request_without_a_valid_key_is_refused(world: World) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers in ({}, {"Authorization": "Bearer tdbk_0123456789abcdef_nope"}):
        response = httpx.post(f"{world.server.url}/mcp", json=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["type"] == "urn:tdb:problem:unauthorized"


def test_stdio_serves_as_the_operator_or_as_a_key(world: World) -> None:
    assert set(tools_of(world.stdio(world.keys["sources:read"]))) == READ_TOOLS | {
        "test_connection"
    }
    record = register(
        world,
        "pg_stdio",
        source_type="postgres",
        connection={
            "host": "127.0.0.1",
            "dbname": "x",
            "user": "u",
            "table": "t",
            "password": "stdio-secret",
        },
    )
    got, registered = calls(
        world.stdio(),
        ("get_source", {"source_id": record["id"]}),
        (
            "register_source",
            {"name": "by_operator", "source_type": "csv", "connection": {"path": "orders.csv"}},
        ),
    )
    assert got.structured_content["connection"]["password"] == MASK
    assert registered.structured_content["registered_by"] == "tdb-cli"
