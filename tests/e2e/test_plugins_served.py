"""Connector plug-ins in a real `tdb serve`: the example plug-in installed and served, a broken
and a clashing one left out, visible in the log, the metrics and `tdb connectors list`."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.builders import auth_headers
from tests.e2e.conftest import run_tdb


def broken_distribution(folder: Path) -> Path:
    """An installed distribution whose plug-ins cannot load: a missing module, and a claim to
    the built-in `postgres` type."""
    info = folder / "tdb_broken_plugins-0.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tdb-broken-plugins\nVersion: 0.2\n"
    )
    (info / "entry_points.txt").write_text(
        "[tdb.connectors]\n"
        "broken = tdb_no_such_module:Connector\n"
        "postgres = tdb_sqlite_connector:SqliteConnector\n"
    )
    return folder


def test_the_example_plugin_is_served_and_broken_ones_are_visible(
    serve: Any, tmp_path: Path, example_plugin: Path
) -> None:
    broken = broken_distribution(tmp_path / "broken")
    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE items (sku TEXT NOT NULL, qty INTEGER)")
    env = {
        "TDB_DATABASE_URL": f"sqlite:///{tmp_path / 'tdb.sqlite3'}",
        "PYTHONPATH": os.pathsep.join(
            [str(example_plugin), str(broken), os.environ.get("PYTHONPATH", "")]
        ),
    }
    server = serve(env)
    headers = auth_headers(server)

    catalogue = httpx.get(f"{server.url}/v1/connectors", headers=headers).json()
    by_type = {c["source_type"]: c for c in catalogue}
    assert list(by_type) == ["csv", "jsonl", "mysql", "parquet", "postgres", "sqlite"]
    assert by_type["postgres"]["origin"] == "builtin"
    sqlite = by_type["sqlite"]
    assert (sqlite["origin"], sqlite["package"]) == ("plugin", "tdb-sqlite-connector==0.1.0")
    assert sqlite["connection_schema"]["properties"]["timeout"] == {
        "type": ["number", "null"],
        "description": "Seconds to wait for a locked database",
        "default": 2.0,
    }

    body = {
        "name": "shop items",
        "source_type": "sqlite",
        "connection": {"database": str(database), "table": "items"},
    }
    created = httpx.post(f"{server.url}/v1/sources", json=body, headers=headers)
    assert created.status_code == 201, created.text
    schema = httpx.get(f"{server.url}/v1/sources/{created.json()['id']}/schema", headers=headers)
    assert schema.status_code == 200, schema.text
    assert [(c["name"], c["type"], c["nullable"]) for c in schema.json()["columns"]] == [
        ("sku", "text", False),
        ("qty", "integer", True),
    ]
    missing = {**body, "connection": {"database": str(database), "table": "nope"}}
    tested = httpx.post(f"{server.url}/v1/sources/test", json=missing, headers=headers).json()
    assert (tested["ok"], tested["reason"]) == (False, "table_not_found")

    metrics = httpx.get(f"{server.url}/metrics").text
    assert "tdb_connector_load_failures 2.0" in metrics
    log = server.stderr_path.read_text()
    assert log.count("connector plug-in not loaded: broken = tdb_no_such_module") == 1
    assert log.count("postgres = tdb_sqlite_connector:SqliteConnector") == 1

    listed = run_tdb(tmp_path, env, "connectors", "list")
    assert "sqlite  plugin  tdb-sqlite-connector==0.1.0  SQLite table" in listed
    assert "broken  not loaded  tdb-broken-plugins==0.2  ModuleNotFoundError" in listed
    assert "postgres  not loaded  tdb-broken-plugins==0.2" in listed
