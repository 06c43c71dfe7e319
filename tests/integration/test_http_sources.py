"""The Sources API through Litestar's test client: every route and status, field for field."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.builders import (
    RECORD_FIELDS,
    SEED_BODY,
    TIMESTAMP,
    UUID_RE,
    assert_problem,
    body,
    post_source,
)
from tests.helpers import free_port
from tests.integration.conftest import Token

# --- register -----------------------------------------------------------------------------


def test_register_returns_the_seed_record_field_for_field(
    client: TestClient[Any], make_token: Token
) -> None:
    token = make_token()
    response = client.post(
        "/v1/sources", json=SEED_BODY, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text
    record = response.json()
    assert list(record) == RECORD_FIELDS
    assert UUID_RE.match(record["id"])
    assert {k: record[k] for k in SEED_BODY} == SEED_BODY
    assert record["registered_by"] == "_".join(token.split("_")[:2])
    assert TIMESTAMP.match(record["registered_at"])
    assert record["status"] == "active"
    assert response.headers["location"] == f"/v1/sources/{record['id']}"


def test_register_fills_optional_fields(client: TestClient[Any], admin: dict[str, str]) -> None:
    connection = {"host": "h", "dbname": "d", "user": "u", "table": "t"}
    response = client.post(
        "/v1/sources",
        json={"name": "products", "source_type": "postgres", "connection": connection},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    record = response.json()
    assert record["description"] == ""
    assert record["tags"] == []
    assert record["connection"] == {**connection, "port": 5432, "schema": "public"}


def test_null_description_and_tags_mean_not_given(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    response = client.post("/v1/sources", json=body(description=None, tags=None), headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["description"] == ""
    assert response.json()["tags"] == []


def test_duplicate_name_is_409(client: TestClient[Any], admin: dict[str, str]) -> None:
    assert client.post("/v1/sources", json=SEED_BODY, headers=admin).status_code == 201
    problem = assert_problem(client.post("/v1/sources", json=SEED_BODY, headers=admin), 409)
    assert "orders" in problem["detail"]
    other_case = client.post("/v1/sources", json=body(name="Orders"), headers=admin)
    assert other_case.status_code == 201


def test_unknown_source_type_is_400_naming_the_available_types(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    problem = assert_problem(
        client.post("/v1/sources", json=body(source_type="oracle"), headers=admin), 400
    )
    assert problem["available_types"] == ["csv", "jsonl", "mysql", "parquet", "postgres"]
    assert "csv" in problem["detail"]
    assert "postgres" in problem["detail"]


@pytest.mark.parametrize(
    ("connection", "fields"),
    [
        ({"host": "h", "dbname": "d", "user": "u"}, {"connection.table"}),
        (
            {"host": "h", "dbname": "d", "user": "u", "table": "t", "tabel": "t"},
            {"connection.tabel"},
        ),
        (
            {"dbname": "d", "user": "u", "table": "t", "port": "5432"},
            {"connection.host", "connection.port"},
        ),
        (
            {"host": "h", "dbname": "d", "user": "u", "table": "t", "port": 70000},
            {"connection.port"},
        ),
    ],
)
def test_bad_connections_are_400_naming_the_fields(
    client: TestClient[Any], admin: dict[str, str], connection: dict[str, Any], fields: set[str]
) -> None:
    problem = assert_problem(
        client.post("/v1/sources", json=body(connection=connection), headers=admin), 400
    )
    assert {e["field"] for e in problem["errors"]} == fields


@pytest.mark.parametrize(
    "payload",
    [
        body(name=""),
        body(name="   "),
        body(name="x" * 101),
        body(name="bad\x07name"),
        body(name=5),
        body(description="x" * 501),
        body(tags=["t"] * 51),
        body(tags=[""]),
        body(tags=["x" * 101]),
        body(tags="production"),
        body(connection="host=db"),
        body(extra="field"),
        {k: v for k, v in SEED_BODY.items() if k != "name"},
        {k: v for k, v in SEED_BODY.items() if k != "connection"},
        [],
        None,
    ],
)
def test_invalid_bodies_are_400(
    client: TestClient[Any], admin: dict[str, str], payload: Any
) -> None:
    # Encoded by hand: httpx sends `json=None` as no body at all, with no Content-Type (415).
    content = json.dumps(payload).encode()
    headers = {**admin, "Content-Type": "application/json"}
    assert_problem(client.post("/v1/sources", content=content, headers=headers), 400)
    assert client.get("/v1/sources", headers=admin).json() == []


def test_malformed_json_is_400(client: TestClient[Any], admin: dict[str, str]) -> None:
    response = client.post(
        "/v1/sources",
        content=b'{"name": "orders",',
        headers={**admin, "Content-Type": "application/json"},
    )
    assert_problem(response, 400)


def test_bodies_over_64_kib_are_413(client: TestClient[Any], admin: dict[str, str]) -> None:
    response = client.post("/v1/sources", json=body(description="x" * 70_000), headers=admin)
    assert_problem(response, 413)
    assert client.get("/v1/sources", headers=admin).json() == []


def test_bodies_just_under_the_limit_are_read(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    tags = [f"{i:02d}" + "x" * 98 for i in range(50)]
    response = client.post("/v1/sources", json=body(tags=tags), headers=admin)
    assert response.status_code == 201, response.text


# --- list ---------------------------------------------------------------------------------


def test_list_gives_summaries_oldest_first(client: TestClient[Any], admin: dict[str, str]) -> None:
    first = post_source(client, admin, "orders")
    second = post_source(client, admin, "products", description="", tags=[])
    response = client.get("/v1/sources", headers=admin)
    assert response.status_code == 200
    listing = response.json()
    assert listing == [
        {
            k: first[k]
            for k in ("id", "name", "source_type", "description", "tags", "registered_at")
        },
        {
            k: second[k]
            for k in ("id", "name", "source_type", "description", "tags", "registered_at")
        },
    ]
    assert list(listing[0]) == ["id", "name", "source_type", "description", "tags", "registered_at"]
    assert "s3cret" not in response.text
    assert "link" not in response.headers


def test_list_filters(client: TestClient[Any], admin: dict[str, str]) -> None:
    post_source(client, admin, "orders", tags=["production", "finance"])
    post_source(client, admin, "orders_archive", tags=["finance"])
    post_source(client, admin, "Order lines", tags=["production"])
    post_source(
        client,
        admin,
        "events",
        source_type="csv",
        connection={"path": "events.csv"},
        tags=["finance"],
    )

    def names(**params: Any) -> list[str]:
        response = client.get("/v1/sources", params=params, headers=admin)
        assert response.status_code == 200, response.text
        return [s["name"] for s in response.json()]

    assert names(tag="finance") == ["orders", "orders_archive", "events"]
    assert names(tag=["finance", "production"]) == ["orders"]
    assert names(source_type="csv") == ["events"]
    assert names(name_prefix="orders") == ["orders", "orders_archive"]
    assert names(name_prefix="Order") == ["Order lines"]
    assert names(name_prefix="%") == []
    assert names(tag="nothing") == []


def test_list_pages_follow_the_link_header(client: TestClient[Any], admin: dict[str, str]) -> None:
    expected = [post_source(client, admin, f"s{i:02}", tags=["all"])["id"] for i in range(7)]
    seen: list[str] = []
    url: str | None = "/v1/sources?limit=3&tag=all"
    pages = 0
    while url:
        response = client.get(url, headers=admin)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page) <= 3
        seen += [s["id"] for s in page]
        pages += 1
        link = response.headers.get("link")
        match = re.fullmatch(r'<([^>]+)>; rel="next"', link) if link else None
        assert link is None or match
        url = match.group(1) if match else None
    assert seen == expected
    assert pages == 3


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "cursor=garbage", "cursor="])
def test_bad_paging_is_400(client: TestClient[Any], admin: dict[str, str], query: str) -> None:
    assert_problem(client.get(f"/v1/sources?{query}", headers=admin), 400)


# --- get ----------------------------------------------------------------------------------


def test_get_returns_the_full_record(client: TestClient[Any], admin: dict[str, str]) -> None:
    record = post_source(client, admin, "orders")
    response = client.get(f"/v1/sources/{record['id']}", headers=admin)
    assert response.status_code == 200
    assert response.json() == record


@pytest.mark.parametrize(
    "source_id", ["3f0e4b8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "not-a-uuid", "1", "%20"]
)
def test_unknown_or_malformed_ids_are_404_everywhere(
    client: TestClient[Any], admin: dict[str, str], source_id: str
) -> None:
    for method, path in (
        ("GET", f"/v1/sources/{source_id}"),
        ("GET", f"/v1/sources/{source_id}/schema"),
        ("DELETE", f"/v1/sources/{source_id}"),
    ):
        assert_problem(client.request(method, path, headers=admin), 404)


# --- delete -------------------------------------------------------------------------------


def test_delete_is_204_then_404_and_frees_the_name(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    record = post_source(client, admin, "orders")
    response = client.delete(f"/v1/sources/{record['id']}", headers=admin)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(client.get(f"/v1/sources/{record['id']}", headers=admin), 404)
    assert_problem(client.get(f"/v1/sources/{record['id']}/schema", headers=admin), 404)
    assert_problem(client.delete(f"/v1/sources/{record['id']}", headers=admin), 404)
    assert client.get("/v1/sources", headers=admin).json() == []
    assert post_source(client, admin, "orders")["id"] != record["id"]


# --- schema -------------------------------------------------------------------------------


@pytest.mark.postgres
def test_schema_of_a_live_postgres_table(
    client: TestClient[Any], admin: dict[str, str], orders_table: dict[str, Any]
) -> None:
    record = post_source(client, admin, "orders", connection=orders_table)
    response = client.get(f"/v1/sources/{record['id']}/schema", headers=admin)
    assert response.status_code == 200, response.text
    schema = response.json()
    assert list(schema) == ["source_id", "source_name", "columns", "inspected_at", "fingerprint"]
    assert re.fullmatch("sha256:[0-9a-f]{64}", schema["fingerprint"])
    assert schema["source_id"] == record["id"]
    assert schema["source_name"] == "orders"
    assert [{"name": c["name"], "type": c["type"]} for c in schema["columns"]] == [
        {"name": "id", "type": "integer"},
        {"name": "customer_id", "type": "integer"},
        {"name": "total", "type": "numeric"},
        {"name": "status", "type": "character varying"},
        {"name": "created_at", "type": "timestamp without time zone"},
    ]
    assert schema["columns"][0]["nullable"] is False
    assert TIMESTAMP.match(schema["inspected_at"])


@pytest.mark.postgres
def test_schema_of_an_unreachable_backend_is_503_with_a_reason(
    client: TestClient[Any], admin: dict[str, str], orders_table: dict[str, Any]
) -> None:
    record = post_source(
        client,
        admin,
        "down",
        connection={**orders_table, "host": "127.0.0.1", "port": free_port()},
    )
    problem = assert_problem(client.get(f"/v1/sources/{record['id']}/schema", headers=admin), 503)
    assert problem["reason"] == "unreachable"


@pytest.mark.postgres
def test_schema_of_a_missing_table_is_503_table_not_found(
    client: TestClient[Any], admin: dict[str, str], orders_table: dict[str, Any]
) -> None:
    record = post_source(
        client, admin, "gone", connection={**orders_table, "table": "no_such_table"}
    )
    problem = assert_problem(client.get(f"/v1/sources/{record['id']}/schema", headers=admin), 503)
    assert problem["reason"] == "table_not_found"


def test_schema_of_a_csv_file(
    client: TestClient[Any], admin: dict[str, str], settings: Any
) -> None:
    (settings.csv_root / "people.csv").write_text(
        "id,name,born\n1,Ada,1815-12-10\n2,Alan,1912-06-23\n"
    )
    record = post_source(
        client, admin, "people", source_type="csv", connection={"path": "people.csv"}
    )
    response = client.get(f"/v1/sources/{record['id']}/schema", headers=admin)
    assert response.status_code == 200, response.text
    assert [(c["name"], c["type"]) for c in response.json()["columns"]] == [
        ("id", "integer"),
        ("name", "text"),
        ("born", "date"),
    ]


def test_schema_of_a_missing_csv_file_is_503(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    record = post_source(
        client, admin, "later", source_type="csv", connection={"path": "later.csv"}
    )
    problem = assert_problem(client.get(f"/v1/sources/{record['id']}/schema", headers=admin), 503)
    assert problem["reason"] == "file_not_found"


# --- ops ----------------------------------------------------------------------------------


def test_health_and_readiness_need_no_key(client: TestClient[Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_unknown_routes_and_methods_are_problems(
    client: TestClient[Any], admin: dict[str, str]
) -> None:
    assert_problem(client.get("/v1/nothing", headers=admin), 404)
    assert_problem(client.put("/v1/sources", headers=admin, json={}), 405)
