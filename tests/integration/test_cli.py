"""The `tdb` CLI over the same container: keys, sources, db upgrade."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.builders import SEED_BODY


def test_keys_create_prints_the_token_last_and_list_and_revoke(tdb: Any) -> None:
    code, out, _ = tdb("keys", "create", "--name", "etl", "--scope", "sources:read")
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("tdbk_")
    key_id = token.split("_")[1]
    code, out, _ = tdb("keys", "list", "--json")
    keys = json.loads(out)
    assert [(k["key_id"], k["name"], k["scopes"], k["revoked_at"]) for k in keys] == [
        (key_id, "etl", ["sources:read"], None)
    ]
    assert token.split("_", 2)[2] not in out
    assert tdb("keys", "revoke", key_id)[0] == 0
    assert json.loads(tdb("keys", "list", "--json")[1])[0]["revoked_at"] is not None
    code, _, err = tdb("keys", "revoke", "nope")
    assert code == 4  # not found
    assert "nope" in err


def test_sources_register_show_list_delete(tdb: Any, tmp_path: Path) -> None:
    file = tmp_path / "orders.json"
    file.write_text(json.dumps(SEED_BODY))
    code, out, _ = tdb("sources", "register", str(file), "--json")
    assert code == 0
    record = json.loads(out)
    assert record["connection"]["password"] == "********"
    assert record["registered_by"] == "tdb-cli"
    code, out, _ = tdb("sources", "show", record["id"], "--json", "--show-secrets")
    assert json.loads(out)["connection"]["password"] == "s3cret"
    code, out, _ = tdb("sources", "list", "--json", "--tag", "finance")
    assert [s["id"] for s in json.loads(out)] == [record["id"]]
    code, _, err = tdb("sources", "register", str(file))
    assert code == 5  # a conflict
    assert "already exists" in err
    assert tdb("sources", "delete", record["id"])[0] == 0
    code, _, err = tdb("sources", "show", record["id"])
    assert code == 4  # not found
    assert "not found" in err


def test_register_reports_every_bad_field(tdb: Any, tmp_path: Path) -> None:
    file = tmp_path / "bad.json"
    file.write_text(
        json.dumps({"name": "", "source_type": "postgres", "connection": {}, "colour": 1})
    )
    code, _, err = tdb("sources", "register", str(file))
    assert code == 1
    assert "colour" in err
    file.write_text("{not json")
    code, _, err = tdb("sources", "register", str(file))
    assert code == 1
    assert "not valid JSON" in err


def test_a_token_limits_the_cli_to_its_scopes(tdb: Any, tmp_path: Path) -> None:
    reader = (
        tdb("keys", "create", "--name", "r", "--scope", "sources:read")[1].strip().splitlines()[-1]
    )
    file = tmp_path / "orders.json"
    file.write_text(json.dumps(SEED_BODY))
    code, _, err = tdb("sources", "register", str(file), "--token", reader)
    assert code == 8  # denied
    assert err == "error: this operation needs the scope sources:write\n"
    code, _, err = tdb("sources", "list", "--token", "tdbk_bogus_token")
    assert code == 8  # denied


def test_db_upgrade_applies_once(tdb: Any, tmp_path: Path) -> None:
    new = ("--database-url", f"sqlite:///{tmp_path / 'new.sqlite3'}")  # the fixture's is upgraded
    code, out, _ = tdb("db", "upgrade", "--json", *new)
    assert code == 0
    assert json.loads(out)["applied"]
    assert json.loads(tdb("db", "upgrade", "--json", *new)[1])["applied"] == []


def test_csv_sources_through_the_cli(tdb: Any, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("a,b\n1,x\n")
    file = tmp_path / "t.json"
    file.write_text(
        json.dumps({"name": "t", "source_type": "csv", "connection": {"path": "t.csv"}})
    )
    source_id = json.loads(tdb("sources", "register", str(file), "--json")[1])["id"]
    code, out, _ = tdb("sources", "schema", source_id, "--json")
    assert code == 0
    assert [(c["name"], c["type"]) for c in json.loads(out)["columns"]] == [
        ("a", "integer"),
        ("b", "text"),
    ]
