"""`GET /v1/columns` through the HTTP API, over real CSV files on an SQLite store."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

from tests.builders import TIMESTAMP, assert_problem, post_source
from tests.integration.conftest import Token

MATCH_FIELDS = ["source_id", "source_name", "source_type", "column", "observed_at"]


def inspected(
    client: TestClient[Any], admin: dict[str, str], settings: Any, name: str, text: str
) -> str:
    (settings.csv_root / f"{name}.csv").write_text(text)
    record = post_source(client, admin, name, source_type="csv", connection={"path": f"{name}.csv"})
    response = client.get(f"/v1/sources/{record['id']}/schema", headers=admin)
    assert response.status_code == 200, response.text
    source_id: str = record["id"]
    return source_id


def test_columns_are_found_by_name_across_sources_with_paging(
    client: TestClient[Any], admin: dict[str, str], settings: Any
) -> None:
    ids = [
        inspected(client, admin, settings, f"s{i}", "id,Customer_ID,total\n1,2,3.5\n")
        for i in range(3)
    ]
    inspected(client, admin, settings, "other", "id,customer\n1,x\n")
    response = client.get("/v1/columns?name=customer_id", headers=admin)
    assert response.status_code == 200, response.text
    found = response.json()
    assert [m["source_id"] for m in found] == sorted(ids)
    assert list(found[0]) == MATCH_FIELDS
    assert found[0]["column"] == {"name": "Customer_ID", "type": "integer", "nullable": False}
    assert found[0]["source_type"] == "csv"
    assert TIMESTAMP.match(found[0]["observed_at"])

    pages, url = [], "/v1/columns?name=CUSTOMER*&limit=2"
    while url:
        response = client.get(url, headers=admin)
        assert response.status_code == 200, response.text
        pages.append([(m["source_name"], m["column"]["name"]) for m in response.json()])
        link = response.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
    assert [len(p) for p in pages] == [2, 2]
    assert sorted(p for page in pages for p in page) == [("other", "customer")] + [
        (f"s{i}", "Customer_ID") for i in range(3)
    ]
    by_type = client.get("/v1/columns?name=*&type=numeric", headers=admin).json()
    assert sorted(m["source_name"] for m in by_type) == ["s0", "s1", "s2"]


def test_bad_searches_are_400s_naming_the_field(
    client: TestClient[Any], admin: dict[str, str], make_token: Token
) -> None:
    for query, field in [
        ("", "name"),
        ("name=x&nme=y", "nme"),
        ("name=x&cursor=abc", "cursor"),
        ("name=x&limit=0", "limit"),
        ("name=" + "x" * 201, "name"),
    ]:
        problem = assert_problem(client.get(f"/v1/columns?{query}", headers=admin), 400)
        assert field in problem["detail"] + str(problem.get("errors")), (query, problem)
    writer = {"Authorization": f"Bearer {make_token('sources:write')}"}
    problem = assert_problem(client.get("/v1/columns?name=id", headers=writer), 403)
    assert problem["required_scope"] == "sources:read"
