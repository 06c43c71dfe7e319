"""The Watches API through the HTTP app, over a real SQLite store and real CSV files: the routes
and their errors (the scheduler is off here: `test_watch_scheduler.py` runs it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import attrs
import pytest
from dependency_injector import providers
from litestar.testing import TestClient

from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.builders import assert_problem, post_source
from tests.helpers import loopback_resolver, on_app
from tests.integration.conftest import Token

WATCH_FIELDS = {
    "source_id",
    "source_name",
    "interval_seconds",
    "status",
    "next_check_at",
    "last_checked_at",
    "last_outcome",
    "last_reason",
    "consecutive_failures",
    "created_at",
    "created_by",
}


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    container = build_container(attrs.evolve(settings, watch=False))
    container.resolver.override(providers.Object(loopback_resolver))
    yield container
    container.shutdown_resources()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(container)) as client:
        yield client


def csv_source(client: TestClient[Any], admin: dict[str, str], root: Path, name: str) -> str:
    (root / f"{name}.csv").write_text("id,total\n1,2.5\n")
    record = post_source(client, admin, name, source_type="csv", connection={"path": f"{name}.csv"})
    source_id: str = record["id"]
    return source_id


def put(client: TestClient[Any], headers: dict[str, str], source_id: str, body: Any) -> Any:
    return client.put(f"/v1/sources/{source_id}/watch", headers=headers, json=body)


def test_a_watch_is_put_shown_listed_and_deleted(
    client: TestClient[Any], admin: dict[str, str], settings: Settings
) -> None:
    source_id = csv_source(client, admin, settings.csv_root, "orders")
    response = put(client, admin, source_id, {"interval_seconds": 900})
    assert response.status_code == 200, response.text
    watch = response.json()
    assert set(watch) == WATCH_FIELDS
    assert (watch["source_name"], watch["interval_seconds"], watch["status"]) == (
        "orders",
        900,
        "pending",
    )
    assert watch["next_check_at"] == watch["created_at"]  # due at once
    assert watch["last_outcome"] is None
    assert watch["consecutive_failures"] == 0
    assert client.get(f"/v1/sources/{source_id}/watch", headers=admin).json() == watch
    assert client.get("/v1/watches", headers=admin).json() == [watch]
    assert client.get("/v1/watches?status=pending", headers=admin).json() == [watch]
    assert client.get("/v1/watches?status=failing", headers=admin).json() == []
    replaced = put(client, admin, source_id, {"interval_seconds": 60}).json()
    assert replaced["interval_seconds"] == 60
    assert client.delete(f"/v1/sources/{source_id}/watch", headers=admin).status_code == 204
    gone = client.get(f"/v1/sources/{source_id}/watch", headers=admin)
    assert assert_problem(gone, 404)["type"] == "urn:tdb:problem:watch-not-found"


def test_no_watch_and_no_source_are_different_404s(
    client: TestClient[Any], admin: dict[str, str], settings: Settings
) -> None:
    source_id = csv_source(client, admin, settings.csv_root, "orders")
    for method in ("get", "delete"):
        none = getattr(client, method)(f"/v1/sources/{source_id}/watch", headers=admin)
        assert assert_problem(none, 404)["type"] == "urn:tdb:problem:watch-not-found"
        for unknown in (str(uuid4()), "not-a-uuid"):
            answer = getattr(client, method)(f"/v1/sources/{unknown}/watch", headers=admin)
            assert assert_problem(answer, 404)["type"] == "urn:tdb:problem:source-not-found"
    unknown = put(client, admin, str(uuid4()), {"interval_seconds": 60})
    assert assert_problem(unknown, 404)["type"] == "urn:tdb:problem:source-not-found"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"interval_seconds": 59}, ["interval_seconds"]),
        ({"interval_seconds": 86401}, ["interval_seconds"]),
        ({"interval_seconds": "60"}, ["interval_seconds"]),
        ({"interval_seconds": 60.5}, ["interval_seconds"]),
        ({"interval_seconds": True}, ["interval_seconds"]),
        ({"interval_seconds": None}, ["interval_seconds"]),
        ({}, ["interval_seconds"]),
        ({"interval_seconds": 60, "every": "1m"}, ["every"]),
        ([60], ["body"]),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(
    client: TestClient[Any],
    admin: dict[str, str],
    settings: Settings,
    body: Any,
    fields: list[str],
) -> None:
    source_id = csv_source(client, admin, settings.csv_root, "orders")
    problem = assert_problem(put(client, admin, source_id, body), 400)
    assert problem["type"] == "urn:tdb:problem:invalid-input"
    assert [e["field"] for e in problem["errors"]] == fields


def test_bad_queries_media_types_and_scopes(
    client: TestClient[Any], admin: dict[str, str], make_token: Token, settings: Settings
) -> None:
    source_id = csv_source(client, admin, settings.csv_root, "orders")
    for query, field in (("status=broken", "status"), ("limit=0", "limit"), ("page=2", "page")):
        problem = assert_problem(client.get(f"/v1/watches?{query}", headers=admin), 400)
        assert field in str(problem), problem
    cursor = assert_problem(client.get("/v1/watches?cursor=abc", headers=admin), 400)
    assert cursor["errors"][0]["field"] == "cursor"
    extra = client.get(f"/v1/sources/{source_id}/watch?x=1", headers=admin)
    assert assert_problem(extra, 400)["errors"][0]["field"] == "x"
    as_text = client.put(
        f"/v1/sources/{source_id}/watch",
        headers={**admin, "Content-Type": "text/plain"},
        content=b'{"interval_seconds": 60}',
    )
    assert_problem(as_text, 415)
    broken = client.put(
        f"/v1/sources/{source_id}/watch",
        headers={**admin, "Content-Type": "application/json"},
        content=b"{",
    )
    assert_problem(broken, 400)
    reader = {"Authorization": f"Bearer {make_token('sources:read')}"}
    denied = put(client, reader, source_id, {"interval_seconds": 60})
    assert assert_problem(denied, 403)["required_scope"] == "sources:write"
    assert client.get("/v1/watches", headers=reader).status_code == 200
    assert_problem(client.get("/v1/watches"), 401)


def test_paging_follows_the_link_soonest_first(
    client: TestClient[Any], admin: dict[str, str], settings: Settings
) -> None:
    ids = []
    for i in range(5):
        ids.append(csv_source(client, admin, settings.csv_root, f"s{i}"))
        assert put(client, admin, ids[-1], {"interval_seconds": 60}).status_code == 200
        time.sleep(0.002)  # distinct creation times, so that the order is theirs
    seen: list[str] = []
    url = "/v1/watches?limit=2"
    while url:
        response = client.get(url, headers=admin)
        seen += [w["source_id"] for w in response.json()]
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else ""
    assert seen == ids


def test_deleting_the_source_deletes_the_watch_and_a_new_connection_makes_it_due(
    client: TestClient[Any], admin: dict[str, str], settings: Settings, container: Container
) -> None:
    source_id = csv_source(client, admin, settings.csv_root, "orders")
    csv_source(client, admin, settings.csv_root, "moved")
    put(client, admin, source_id, {"interval_seconds": 3600})
    (claim,) = on_app(client, container.claim_due_checks(), 10)
    assert on_app(client, container.run_check(), claim).recorded
    checked = client.get(f"/v1/sources/{source_id}/watch", headers=admin).json()
    assert (checked["status"], checked["last_outcome"]) == ("ok", "unchanged")
    assert checked["next_check_at"] > checked["last_checked_at"]
    merge = {**admin, "Content-Type": "application/merge-patch+json"}
    described = client.patch(f"/v1/sources/{source_id}", headers=merge, json={"description": "x"})
    assert described.status_code == 200
    before = client.get(f"/v1/sources/{source_id}/watch", headers=admin).json()
    moved = client.patch(
        f"/v1/sources/{source_id}", headers=merge, json={"connection": {"path": "moved.csv"}}
    )
    after = client.get(f"/v1/sources/{source_id}/watch", headers=admin).json()
    assert before["next_check_at"] == checked["next_check_at"]
    assert after["next_check_at"] == moved.json()["updated_at"] < before["next_check_at"]
    assert client.delete(f"/v1/sources/{source_id}", headers=admin).status_code == 204
    assert client.get("/v1/watches", headers=admin).json() == []
