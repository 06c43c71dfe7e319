"""The plug-in keeps tdb's connector contract (run with tdb installed: `pytest tests`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tdb_sqlite_connector import SqliteConnector

from adapters.connectors.contract import check_plugin


def test_the_sqlite_connector_keeps_the_contract(tmp_path: Path) -> None:
    database = tmp_path / "shop.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE items (sku TEXT NOT NULL, qty INTEGER)")
    check_plugin(
        SqliteConnector,
        source_type="sqlite",
        minimal={"database": "shop.db", "table": "items"},
        existing={"database": str(database), "table": "items"},
        columns=["sku", "qty"],
        missing={"database": str(database), "table": "no_such_table"},
    )
