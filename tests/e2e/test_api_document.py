"""Every example of the API document, against a real `tdb serve` started as the README says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import RECORD_FIELDS, TIMESTAMP
from tests.e2e.conftest import TdbServer


@pytest.fixture
def orders_connection(orders_table: dict[str, Any]) -> dict[str, Any]:
    """The API document's `orders` table; a password as in the document (trust auth ignores it)."""
    return {"password": "s3cret", **orders_table}


@pytest.mark.postgres
def test_the_whole_document_against_a_real_server(
    serve: Any, tmp_path: Path, orders_connection: dict[str, Any]
) -> None:
    server: TdbServer = serve()
    token = server.admin_token()
    assert token, server.stdout
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=10) as http:
        body = {
            "name": "orders",
            "source_type": "postgres",
            "connection": orders_connection,
            "description": "Order records",
            "tags": ["production", "finance"],
        }
        created = http.post("/v1/sources", json=body)
        assert created.status_code == 201, created.text
        record = created.json()
        assert list(record) == RECORD_FIELDS
        assert {k: record[k] for k in body} == body
        assert record["registered_by"] == "_".join(token.split("_")[:2])
        assert TIMESTAMP.match(record["registered_at"])
        assert record["status"] == "active"
        assert created.headers["location"] == f"/v1/sources/{record['id']}"

        products = http.post(
            "/v1/sources",
            json={
                "name": "products",
                "source_type": "postgres",
                "connection": {**orders_connection, "table": "products"},
            },
        ).json()
        listing = http.get("/v1/sources")
        assert listing.status_code == 200
        assert listing.json() == [
            {k: r[k] for k in ("id", "name", "source_type", "description", "tags", "registered_at")}
            for r in (record, products)
        ]
        assert listing.json()[1]["description"] == ""
        assert listing.json()[1]["tags"] == []

        assert http.get(f"/v1/sources/{record['id']}").json() == record
        assert http.post("/v1/sources", json=body).status_code == 409
        invalid_type = http.post("/v1/sources", json={**body, "name": "x", "source_type": "oracle"})
        assert invalid_type.status_code == 400

        schema = http.get(f"/v1/sources/{record['id']}/schema")
        assert schema.status_code == 200, schema.text
        assert [{"name": c["name"], "type": c["type"]} for c in schema.json()["columns"]] == [
            {"name": "id", "type": "integer"},
            {"name": "customer_id", "type": "integer"},
            {"name": "total", "type": "numeric"},
            {"name": "status", "type": "character varying"},
            {"name": "created_at", "type": "timestamp without time zone"},
        ]
        assert schema.json()["source_name"] == "orders"
        missing = http.get(f"/v1/sources/{products['id']}/schema")
        assert missing.status_code == 503
        assert missing.json()["reason"] == "table_not_found"

        assert http.delete(f"/v1/sources/{record['id']}").status_code == 204
        assert http.get(f"/v1/sources/{record['id']}").status_code == 404
        assert http.delete(f"/v1/sources/{record['id']}").status_code == 404
        assert http.get(f"/v1/sources/{record['id']}/schema").status_code == 404
        assert http.get("/v1/sources", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_admin_key_is_printed_once(serve: Any, tmp_path: Path) -> None:
    first: TdbServer = serve()
    token = first.admin_token()
    assert token
    assert first.stdout.strip().splitlines()[-1] == token
    first.stop()
    second: TdbServer = serve()
    assert second.admin_token() is None
    response = httpx.get(f"{second.url}/v1/sources", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert (tmp_path / "tdb.sqlite3").exists()
    assert (tmp_path / "tdb.sqlite3.key").stat().st_mode & 0o777 == 0o600
