"""`tdb sources watch`, `tdb sources unwatch` and `tdb watches list`, in process on SQLite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def registered(tdb: Any, tmp_path: Path) -> str:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "orders.csv").write_text("id,total\n1,2.5\n")
    file = tmp_path / "orders.json"
    body = {"name": "orders", "source_type": "csv", "connection": {"path": "orders.csv"}}
    file.write_text(json.dumps(body))
    code, out, err = tdb("sources", "register", str(file), "--json")
    assert code == 0, err
    source_id: str = json.loads(out)["id"]
    return source_id


def test_watch_list_and_unwatch(tdb: Any, tmp_path: Path) -> None:
    source_id = registered(tdb, tmp_path)
    code, out, err = tdb("sources", "watch", source_id, "--every", "15m", "--json")
    assert code == 0, err
    watch = json.loads(out)
    assert (watch["interval_seconds"], watch["status"], watch["created_by"]) == (
        900,
        "pending",
        "tdb-cli",
    )
    code, out, _ = tdb("sources", "watch", source_id, "--every", "2h")
    assert code == 0
    assert out.startswith("Watching orders every 7200 s; next check at ")
    code, out, _ = tdb("watches", "list", "--json")
    assert [(w["source_id"], w["interval_seconds"]) for w in json.loads(out)] == [(source_id, 7200)]
    code, out, _ = tdb("watches", "list", "--status", "failing", "--json")
    assert (code, json.loads(out)) == (0, [])
    code, out, _ = tdb("watches", "list")
    assert out.splitlines()[0].startswith("NEXT CHECK")
    assert f"pending  7200s  -  orders {source_id}" in out
    assert tdb("sources", "unwatch", source_id)[:2] == (0, f"Stopped watching source {source_id}\n")
    code, out, _ = tdb("sources", "unwatch", source_id, "--json")
    assert (code, json.loads(out)["type"]) == (4, "urn:tdb:problem:watch-not-found")


def test_bad_durations_and_unknown_sources(tdb: Any, tmp_path: Path) -> None:
    source_id = registered(tdb, tmp_path)
    for every, field in (("15 minutes", "every"), ("-1m", "every"), ("59s", "interval_seconds")):
        code, out, _ = tdb("sources", "watch", source_id, "--every", every, "--json")
        assert code == 1
        assert [e["field"] for e in json.loads(out)["errors"]] == [field]
    code, out, _ = tdb(
        "sources", "watch", "0b9e4a52-0000-4000-8000-000000000000", "--every", "1m", "--json"
    )
    assert (code, json.loads(out)["type"]) == (4, "urn:tdb:problem:source-not-found")
