"""`GET /v1/connectors`: the catalogue of source types, each connection as JSON Schema 2020-12."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
from litestar.testing import TestClient

from entrypoints.container import build_container
from entrypoints.settings import Settings
from tests.builders import assert_problem
from tests.integration.conftest import Token


def test_the_catalogue_lists_every_type_sorted_with_its_connection_schema(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    response = client.get("/v1/connectors", headers=admin)
    assert response.status_code == 200
    catalogue = response.json()
    assert [c["source_type"] for c in catalogue] == ["csv", "jsonl", "mysql", "parquet", "postgres"]
    for entry in catalogue:
        assert entry["origin"] == "builtin"
        assert entry["package"] is None
        assert entry["title"]
        schema = entry["connection_schema"]
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["additionalProperties"] is False
        for field in schema["properties"].values():
            assert field["description"]
    mysql = next(c for c in catalogue if c["source_type"] == "mysql")["connection_schema"]
    assert mysql["required"] == ["host", "dbname", "user", "table"]
    assert mysql["properties"]["password"]["writeOnly"] is True
    assert mysql["properties"]["port"]["default"] == 3306
    assert mysql["properties"]["ssl_mode"]["default"] == "preferred"
    assert "writeOnly" not in mysql["properties"]["user"]


def test_a_connection_the_schema_accepts_is_one_the_server_accepts(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    schema = next(
        c["connection_schema"]
        for c in client.get("/v1/connectors", headers=admin).json()
        if c["source_type"] == "jsonl"
    )
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"path": "a.jsonl"})
    assert not validator.is_valid({"path": "a.jsonl", "delimiter": ","})
    body = {"source_type": "jsonl", "connection": {"path": "a.jsonl", "delimiter": ","}}
    problem = assert_problem(client.post("/v1/sources/test", json=body, headers=admin), 400)
    assert problem["errors"][0]["field"] == "connection.delimiter"


def test_an_unknown_type_names_the_types_the_catalogue_lists(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    listed = [c["source_type"] for c in client.get("/v1/connectors", headers=admin).json()]
    body = {"name": "x", "source_type": "oracle", "connection": {}}
    problem = assert_problem(client.post("/v1/sources", json=body, headers=admin), 400)
    assert problem["available_types"] == listed


def test_the_catalogue_needs_sources_read_and_no_unknown_parameter(
    client: TestClient[Any], make_token: Token
) -> None:
    writer = {"Authorization": f"Bearer {make_token('sources:write')}"}
    assert_problem(client.get("/v1/connectors", headers=writer), 403)
    assert_problem(client.get("/v1/connectors"), 401)
    reader = {"Authorization": f"Bearer {make_token('sources:read')}"}
    assert client.get("/v1/connectors", headers=reader).status_code == 200
    assert_problem(client.get("/v1/connectors?type=csv", headers=reader), 400)


def test_tdb_connectors_enables_only_the_types_it_names(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"TDB_CONNECTORS": "csv, jsonl", "TDB_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"}
    )
    container = build_container(settings)
    try:
        assert list(container.connectors().types()) == ["csv", "jsonl"]
        assert container.connectors().failures() == ()
    finally:
        container.shutdown_resources()
