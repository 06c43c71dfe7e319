"""The schema history through the HTTP API, over real CSV files and a real PostgreSQL table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from tests.builders import TIMESTAMP, assert_problem, post_source
from tests.integration.conftest import Token

SNAPSHOT_FIELDS = ["fingerprint", "observed_at", "columns", "breaking", "changes"]
CHANGE_FIELDS = ["column", "change", "before", "after", "breaking"]


def csv_source(client: TestClient[Any], admin: dict[str, str], root: Path, text: str) -> str:
    (root / "people.csv").write_text(text)
    record = post_source(
        client, admin, "people", source_type="csv", connection={"path": "people.csv"}
    )
    source_id: str = record["id"]
    return source_id


def inspect(client: TestClient[Any], admin: dict[str, str], source_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/sources/{source_id}/schema", headers=admin)
    assert response.status_code == 200, response.text
    schema: dict[str, Any] = response.json()
    return schema


def history(
    client: TestClient[Any], admin: dict[str, str], source_id: str, query: str = ""
) -> list[dict[str, Any]]:
    response = client.get(f"/v1/sources/{source_id}/schema/history{query}", headers=admin)
    assert response.status_code == 200, response.text
    snapshots: list[dict[str, Any]] = response.json()
    return snapshots


def test_rewriting_a_csv_file_shows_removed_added_and_type_changed(
    client: TestClient[Any], admin: dict[str, str], settings: Any
) -> None:
    source_id = csv_source(client, admin, settings.csv_root, "id,name,zip\n1,Ada,12345\n")
    first = inspect(client, admin, source_id)
    assert re.fullmatch("sha256:[0-9a-f]{64}", first["fingerprint"])
    assert inspect(client, admin, source_id)["fingerprint"] == first["fingerprint"]
    # Another header: `name` gone, `email` new; and a leading zero makes `zip` text.
    (settings.csv_root / "people.csv").write_text("id,zip,email\n1,02134,ada@example.org\n")
    second = inspect(client, admin, source_id)
    assert second["fingerprint"] != first["fingerprint"]

    newest, oldest = history(client, admin, source_id)
    assert list(newest) == SNAPSHOT_FIELDS
    assert newest["fingerprint"] == second["fingerprint"]
    assert newest["columns"] == second["columns"]
    assert TIMESTAMP.match(newest["observed_at"])
    assert newest["breaking"] is True
    assert all(list(change) == CHANGE_FIELDS for change in newest["changes"])
    changes = {(c["column"], c["change"]): c for c in newest["changes"]}
    assert set(changes) == {
        ("name", "removed"),
        ("zip", "type_changed"),
        ("email", "added"),
    }
    assert changes["name", "removed"]["after"] is None
    assert changes["name", "removed"]["before"]["type"] == "text"
    assert changes["name", "removed"]["breaking"] is True
    assert changes["zip", "type_changed"]["before"]["type"] == "integer"
    assert changes["zip", "type_changed"]["after"]["type"] == "text"
    assert changes["zip", "type_changed"]["breaking"] is True
    assert changes["email", "added"]["before"] is None
    assert changes["email", "added"]["after"]["name"] == "email"
    assert changes["email", "added"]["breaking"] is False
    assert oldest["fingerprint"] == first["fingerprint"]
    assert oldest["changes"] == []
    assert oldest["breaking"] is False
    # Each stored snapshot went into the audit trail with it, as `source.schema_changed`.
    events = client.get(
        "/v1/events",
        params={"action": "source.schema_changed", "source_id": source_id},
        headers=admin,
    )
    assert events.status_code == 200, events.text
    assert [(e["source_name"], e["breaking"]) for e in events.json()] == [
        ("people", False),
        ("people", True),
    ]
    assert [e["at"] for e in events.json()] == [oldest["observed_at"], newest["observed_at"]]


def test_a_failed_inspection_records_nothing(
    client: TestClient[Any], admin: dict[str, str], settings: Any
) -> None:
    source_id = csv_source(client, admin, settings.csv_root, "id\n1\n")
    inspect(client, admin, source_id)
    (settings.csv_root / "people.csv").unlink()
    failed = client.get(f"/v1/sources/{source_id}/schema", headers=admin)
    assert assert_problem(failed, 503)["reason"] == "file_not_found"
    assert len(history(client, admin, source_id)) == 1


def test_history_pages_follow_the_link_header(
    client: TestClient[Any], admin: dict[str, str], settings: Any
) -> None:
    source_id = csv_source(client, admin, settings.csv_root, "c0\n1\n")
    printed = []
    for width in range(1, 6):
        header = ",".join(f"c{i}" for i in range(width))
        (settings.csv_root / "people.csv").write_text(f"{header}\n" + ",".join("1" * width) + "\n")
        printed.append(inspect(client, admin, source_id)["fingerprint"])
    assert history(client, admin, source_id)[0]["fingerprint"] == printed[-1]
    seen: list[str] = []
    url: str | None = f"/v1/sources/{source_id}/schema/history?limit=2"
    while url is not None:
        response = client.get(url, headers=admin)
        assert response.status_code == 200, response.text
        assert len(response.json()) <= 2
        seen += [s["fingerprint"] for s in response.json()]
        link = response.headers.get("link")
        url = re.fullmatch(r'<([^>]+)>; rel="next"', link).group(1) if link else None  # type: ignore[union-attr]
    assert seen == printed[::-1]


@pytest.mark.parametrize(
    "query", ["?limit=0", "?limit=1001", "?limit=x", "?cursor=bm90LWEtY3Vyc29y", "?size=2"]
)
def test_bad_history_paging_is_400(
    client: TestClient[Any], admin: dict[str, str], settings: Any, query: str
) -> None:
    source_id = csv_source(client, admin, settings.csv_root, "id\n1\n")
    response = client.get(f"/v1/sources/{source_id}/schema/history{query}", headers=admin)
    assert_problem(response, 400)


def test_a_cursor_of_another_history_or_of_the_list_is_400(
    client: TestClient[Any], admin: dict[str, str], settings: Any
) -> None:
    (settings.csv_root / "a.csv").write_text("x\n1\n")
    ids = [
        post_source(client, admin, name, source_type="csv", connection={"path": "a.csv"})["id"]
        for name in ("a", "b")
    ]
    for source_id in ids:
        inspect(client, admin, source_id)
        (settings.csv_root / "a.csv").write_text("y\n1\n")
        inspect(client, admin, source_id)
    link = client.get(f"/v1/sources/{ids[0]}/schema/history?limit=1", headers=admin).headers["link"]
    cursor = re.search(r"cursor=([^&>]+)", link).group(1)  # type: ignore[union-attr]
    assert client.get(f"/v1/sources/{ids[0]}/schema/history?cursor={cursor}", headers=admin).json()
    foreign = client.get(f"/v1/sources/{ids[1]}/schema/history?cursor={cursor}", headers=admin)
    assert_problem(foreign, 400)
    list_link = client.get("/v1/sources?limit=1", headers=admin).headers["link"]
    list_cursor = re.search(r"cursor=([^&>]+)", list_link).group(1)  # type: ignore[union-attr]
    from_list = client.get(
        f"/v1/sources/{ids[0]}/schema/history?cursor={list_cursor}", headers=admin
    )
    assert_problem(from_list, 400)


def test_history_of_unknown_or_deleted_sources_is_404(
    client: TestClient[Any], admin: dict[str, str], settings: Any
) -> None:
    for ident in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        assert_problem(client.get(f"/v1/sources/{ident}/schema/history", headers=admin), 404)
    source_id = csv_source(client, admin, settings.csv_root, "id\n1\n")
    inspect(client, admin, source_id)
    assert client.delete(f"/v1/sources/{source_id}", headers=admin).status_code == 204
    assert_problem(client.get(f"/v1/sources/{source_id}/schema/history", headers=admin), 404)
    again = post_source(
        client, admin, "people", source_type="csv", connection={"path": "people.csv"}
    )
    assert history(client, admin, again["id"]) == []


def test_history_needs_the_read_scope(
    client: TestClient[Any], admin: dict[str, str], settings: Any, make_token: Token
) -> None:
    source_id = csv_source(client, admin, settings.csv_root, "id\n1\n")
    writer = {"Authorization": f"Bearer {make_token('sources:write')}"}
    assert_problem(client.get(f"/v1/sources/{source_id}/schema/history", headers=writer), 403)
    assert_problem(client.get(f"/v1/sources/{source_id}/schema/history"), 401)
    reader = {"Authorization": f"Bearer {make_token('sources:read')}"}
    assert history(client, reader, source_id) == []


@pytest.mark.postgres
def test_a_table_dropped_and_created_again_keeps_its_fingerprint(
    client: TestClient[Any], admin: dict[str, str], postgres_url: str, orders_table: dict[str, Any]
) -> None:
    create = "CREATE TABLE public.recreated (id bigint NOT NULL, note text, at date)"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.recreated")
        conn.execute(create)
        record = post_source(
            client, admin, "recreated", connection={**orders_table, "table": "recreated"}
        )
        before = inspect(client, admin, record["id"])
        conn.execute("DROP TABLE public.recreated")
        conn.execute(create)
        after = inspect(client, admin, record["id"])
        assert after["fingerprint"] == before["fingerprint"]
        assert len(history(client, admin, record["id"])) == 1
        conn.execute("ALTER TABLE public.recreated ALTER COLUMN id DROP NOT NULL")
        loosened = inspect(client, admin, record["id"])
        conn.execute("DROP TABLE public.recreated")
    newest = history(client, admin, record["id"])[0]
    assert newest["fingerprint"] == loosened["fingerprint"]
    assert newest["breaking"] is True
    assert [(c["column"], c["change"], c["breaking"]) for c in newest["changes"]] == [
        ("id", "nullability_changed", True)
    ]
