"""The watch scheduler as a serving app runs it, over a real SQLite store, real CSV files and a
real PostgreSQL table, at the test-only shortest interval of one second."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import psycopg
import pytest
from dependency_injector import providers
from litestar.testing import TestClient

from entrypoints.container import Container, build_container
from entrypoints.http.app import create_app
from entrypoints.settings import Settings
from tests.builders import post_source
from tests.helpers import loopback_resolver

WAIT_SECONDS = 15


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    fast = attrs.evolve(settings, watch=True, watch_min_interval=1, watch_failures=2)
    container = build_container(fast)
    container.resolver.override(providers.Object(loopback_resolver))
    yield container
    container.shutdown_resources()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(container)) as client:
        yield client


def watch_until(
    client: TestClient[Any], admin: dict[str, str], source_id: str, done: Callable[[Any], bool]
) -> dict[str, Any]:
    """The watch as soon as `done(watch)` holds (the scheduler runs on the app's own loop)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        watch: dict[str, Any] = client.get(f"/v1/sources/{source_id}/watch", headers=admin).json()
        if done(watch):
            return watch
        assert time.monotonic() < deadline, watch
        time.sleep(0.05)


def watch_events(client: TestClient[Any], admin: dict[str, str], source_id: str) -> list[Any]:
    trail = client.get(f"/v1/events?source_id={source_id}&actor=tdb-watch", headers=admin).json()
    return [(e["action"], e["breaking"], e["reason"]) for e in trail]


def test_checks_follow_a_csv_file_through_change_failure_and_recovery(
    client: TestClient[Any], admin: dict[str, str], settings: Settings
) -> None:
    path = settings.csv_root / "people.csv"
    path.write_text("id,name,zip\n1,Ada,12345\n")
    source = post_source(client, admin, "people", source_type="csv", connection={"path": path.name})
    source_id = source["id"]
    put = client.put(f"/v1/sources/{source_id}/watch", headers=admin, json={"interval_seconds": 1})
    assert put.status_code == 200, put.text
    first = watch_until(client, admin, source_id, lambda w: w["status"] != "pending")
    assert (first["status"], first["last_outcome"]) == ("ok", "unchanged")
    path.write_text("id,name\n1,Ada\n")
    watch_until(client, admin, source_id, lambda w: w["last_outcome"] == "breaking")
    path.unlink()
    failing = watch_until(client, admin, source_id, lambda w: w["consecutive_failures"] >= 3)
    assert (failing["status"], failing["last_reason"]) == ("failing", "file_not_found")
    path.write_text("id,name\n1,Ada\n")
    watch_until(client, admin, source_id, lambda w: w["status"] == "ok")
    assert watch_events(client, admin, source_id) == [
        ("source.schema_changed", False, None),
        ("source.schema_changed", True, None),
        ("source.check_failed", None, "file_not_found"),
        ("source.check_recovered", None, None),
    ]
    history = client.get(f"/v1/sources/{source_id}/schema/history", headers=admin).json()
    assert [h["breaking"] for h in history] == [True, False]
    scraped = client.get("/metrics").text
    for outcome in ("unchanged", "breaking", "failed"):
        assert f'tdb_watch_checks_total{{outcome="{outcome}"}}' in scraped
    assert "tdb_watch_lateness_seconds_count" in scraped
    assert "tdb_watches_overdue 0.0" in scraped


@pytest.mark.postgres
def test_a_watched_table_altered_is_seen_as_breaking(
    client: TestClient[Any], admin: dict[str, str], postgres_url: str, orders_table: dict[str, Any]
) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.watched")
        conn.execute("CREATE TABLE public.watched (id bigint NOT NULL, note text)")
        record = post_source(
            client, admin, "watched", connection={**orders_table, "table": "watched"}
        )
        source_id = record["id"]
        client.put(f"/v1/sources/{source_id}/watch", headers=admin, json={"interval_seconds": 1})
        watch_until(client, admin, source_id, lambda w: w["last_outcome"] == "unchanged")
        conn.execute("ALTER TABLE public.watched DROP COLUMN note")
        watch_until(client, admin, source_id, lambda w: w["last_outcome"] == "breaking")
        conn.execute("DROP TABLE public.watched")
    assert watch_events(client, admin, source_id) == [
        ("source.schema_changed", False, None),
        ("source.schema_changed", True, None),
    ]
