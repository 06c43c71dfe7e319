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
