"""The /mcp mount in process: the Bearer check in front, JSON-RPC answers, and TDB_MCP=off."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from litestar.testing import TestClient

from entrypoints.container import build_container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from entrypoints.tdb import main as tdb_main
from tests.builders import assert_problem
from tests.integration.conftest import Token

HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


def test_mcp_answers_a_key_its_tools_and_refuses_one_without(
    client: TestClient[Any], make_token: Token
) -> None:
    reader = {**HEADERS, "Authorization": f"Bearer {make_token('sources:read')}"}
    response = client.post("/mcp", json=LIST, headers=reader)
    assert response.status_code == 200, response.text
    names = {t["name"] for t in response.json()["result"]["tools"]}
    assert "get_source" in names
    assert "register_source" not in names
    problem = assert_problem(client.post("/mcp", json=LIST, headers=HEADERS), 401)
    assert problem["type"] == "urn:tdb:problem:unauthorized"
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "get_source", "arguments": {"source_id": "no-such-id"}},
    }
    answer = client.post("/mcp", json=call, headers=reader).json()["result"]
    assert answer["isError"] is True
    assert answer["structuredContent"]["status"] == 404


def test_tdb_mcp_off_removes_the_endpoint(settings: Settings, make_token: Token) -> None:
    container = build_container(attrs.evolve(settings, mcp=False))
    try:
        with TestClient(create_app(container)) as off:
            admin = {**HEADERS, "Authorization": f"Bearer {make_token()}"}
            assert_problem(off.post("/mcp", json=LIST, headers=admin), 404)
            assert "/mcp" not in off.get("/schema/openapi.json").text
    finally:
        container.shutdown_resources()


def test_tdb_mcp_with_a_token_that_is_not_valid_exits_denied(
    tdb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # The `tdb` fixture's store and settings; the whole `tdb` group, which has `mcp`.
    assert tdb_main(["mcp", "--token", "tdbk_0123456789abcdef_nope"]) == 8
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ")


def _resolved(schema: Any, document: dict[str, Any]) -> Any:
    """The schema with every `$ref` into the document written out in its place."""
    if isinstance(schema, list):
        return [_resolved(item, document) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _resolved(target, document)
    return {key: _resolved(value, document) for key, value in schema.items()}


def test_the_source_tools_take_the_request_bodies_of_the_openapi_document(
    client: TestClient[Any], make_token: Token
) -> None:
    """register_source and update_source take what POST and PATCH /v1/sources take: the same
    schemas, once the document's references are written out (`verify`, a query parameter
    over HTTP, is the tools' one addition)."""
    document = client.get("/schema/openapi.json").json()
    admin = {**HEADERS, "Authorization": f"Bearer {make_token()}"}
    tools = {
        t["name"]: t["inputSchema"]
        for t in client.post("/mcp", json=LIST, headers=admin).json()["result"]["tools"]
    }
    posting = document["paths"]["/v1/sources"]["post"]
    patching = document["paths"]["/v1/sources/{source_id}"]["patch"]
    verify = {
        name: schema
        for operation in (posting, patching)
        for parameter in operation["parameters"]
        if parameter["name"] == "verify"
        for name, schema in parameter["schema"].items()
        if name != "description"
    }
    registering = _resolved(posting["requestBody"]["content"]["application/json"], document)
    shapes = tools["register_source"]["oneOf"]
    for shape in shapes:
        given = shape["properties"].pop("verify")
        assert (
            {name: given[name] for name in verify}
            == verify
            == {"type": "boolean", "default": False}
        )
    # The document also names the property that tells its shapes apart; a tool's schema is
    # JSON Schema, which has no such keyword.
    assert shapes == registering["schema"]["oneOf"]
    assert len(shapes) >= 2
    for media in ("application/json", "application/merge-patch+json"):
        patch = _resolved(patching["requestBody"]["content"][media]["schema"], document)
        assert tools["update_source"]["properties"]["patch"] == patch
    assert patch["properties"]["name"]["pattern"]
