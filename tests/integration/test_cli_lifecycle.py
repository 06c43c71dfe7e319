"""The lifecycle in the `tdb` CLI: update from a patch file or stdin, connection tests, events."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.builders import SEED_BODY


def csv_body(name: str) -> dict[str, Any]:
    return {"name": name, "source_type": "csv", "connection": {"path": f"{name}.csv"}}


@pytest.fixture
def registered(tdb: Any, tmp_path: Path) -> dict[str, Any]:
    file = tmp_path / "orders.json"
    file.write_text(json.dumps(SEED_BODY))
    code, out, err = tdb("sources", "register", str(file), "--json")
    assert code == 0, err
    record: dict[str, Any] = json.loads(out)
    return record


def test_update_from_a_file_and_from_stdin(
    tdb: Any,
    registered: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"description": "new", "connection": {"password": "********"}}))
    code, out, err = tdb("sources", "update", registered["id"], str(patch), "--json")
    assert code == 0, err
    record = json.loads(out)
    assert (record["description"], record["version"], record["updated_by"]) == (
        "new",
        2,
        "tdb-cli",
    )
    monkeypatch.setattr("sys.stdin", io.StringIO('{"tags": ["x"]}'))
    code, out, err = tdb("sources", "update", registered["id"], "-", "--if-match", "2", "--json")
    assert code == 0, err
    assert json.loads(out)["tags"] == ["x"]
    code, out, _ = tdb("sources", "show", registered["id"], "--json", "--show-secrets")
    assert json.loads(out)["connection"]["password"] == "s3cret"


def test_the_local_operator_moves_a_source_without_sending_its_password(
    tdb: Any, registered: dict[str, Any], tmp_path: Path
) -> None:
    # Trusted as a key with every scope, though shown secrets only with --show-secrets.
    moved = tmp_path / "patch.json"
    moved.write_text(json.dumps({"connection": {"host": "127.0.0.9"}}))
    code, out, err = tdb("sources", "update", registered["id"], str(moved), "--json")
    assert code == 0, err
    record = json.loads(out)
    assert (record["version"], record["connection"]["host"]) == (2, "127.0.0.9")
    assert record["connection"]["password"] == "********"
    code, out, _ = tdb("sources", "show", registered["id"], "--show-secrets", "--json")
    assert json.loads(out)["connection"]["password"] == "s3cret"


def test_a_key_that_may_not_read_is_told_only_the_version(
    tdb: Any, registered: dict[str, Any], tmp_path: Path
) -> None:
    code, out, err = tdb("keys", "create", "--name", "w", "--scope", "sources:write")
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"description": "new"}))
    code, out, err = tdb(
        "sources", "update", registered["id"], str(patch), "--json", "--token", token
    )
    assert code == 0, err
    answer = json.loads(out)
    assert list(answer) == ["id", "version", "updated_at"]
    assert (answer["id"], answer["version"]) == (registered["id"], 2)
    patch.write_text(json.dumps({"connection": {"host": "127.0.0.9"}}))
    code, _, err = tdb("sources", "update", registered["id"], str(patch), "--token", token)
    assert code == 1
    assert "connection.password" in err


def test_update_refusals(tdb: Any, registered: dict[str, Any], tmp_path: Path) -> None:
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"id": "x", "connection": {"host": None}}))
    code, _, err = tdb("sources", "update", registered["id"], str(patch))
    assert code == 1
    assert "error: id: is read-only" in err
    patch.write_text(json.dumps({"connection": {"host": None}}))
    code, _, err = tdb("sources", "update", registered["id"], str(patch))
    assert (code, err) == (1, "error: connection.host: is required\n")
    patch.write_text("{nope")
    code, _, err = tdb("sources", "update", registered["id"], str(patch))
    assert (code, "is not valid JSON" in err) == (1, True)
    patch.write_text(json.dumps({"description": "x"}))
    code, _, err = tdb("sources", "update", registered["id"], str(patch), "--if-match", "7")
    assert code == 5  # a conflict
    assert "version 1" in err
    code, _, err = tdb("sources", "delete", registered["id"], "--if-match", "7")
    assert code == 5  # a conflict
    assert tdb("sources", "delete", registered["id"], "--if-match", "1")[0] == 0


def test_sources_test_exits_6_when_the_source_does_not_answer(
    tdb: Any,
    tmp_path: Path,
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("id\n1\n")
    file = tmp_path / "a.json"
    file.write_text(
        json.dumps({"name": "a", "source_type": "csv", "connection": {"path": "a.csv"}})
    )
    source = json.loads(tdb("sources", "register", str(file), "--verify", "--json")[1])
    code, out, _ = tdb("sources", "test", source["id"])
    assert (code, out.startswith("ok")) == (0, True)
    (tmp_path / "data" / "a.csv").unlink()
    code, out, _ = tdb("sources", "test", source["id"], "--json")
    assert code == 6  # the backend did not answer
    assert json.loads(out)["reason"] == "file_not_found"
    file.write_text(
        json.dumps({"name": "b", "source_type": "csv", "connection": {"path": "b.csv"}})
    )
    code, _, err = tdb("sources", "register", str(file), "--verify")
    assert code == 6  # the backend did not answer
    assert "file_not_found" in err
    assert json.loads(tdb("sources", "list", "--json")[1])[0]["name"] == "a"


def test_events_list_shows_key_and_source_events(
    tdb: Any,
    registered: dict[str, Any],
) -> None:
    token = tdb("keys", "create", "--name", "etl")[1].strip().splitlines()[-1]
    key_id = token.split("_")[1]
    assert tdb("keys", "revoke", key_id)[0] == 0
    code, out, err = tdb("events", "list", "--json")
    assert code == 0, err
    events = json.loads(out)
    assert [(e["action"], e["actor"]) for e in events] == [
        ("source.registered", "tdb-cli"),
        ("key.created", "tdb-cli"),
        ("key.revoked", "tdb-cli"),
    ]
    assert events[1]["key_id"] == key_id
    assert token.split("_", 2)[2] not in out
    code, out, _ = tdb("events", "list", "--action", "key.revoked")
    assert code == 0
    assert out.count("\n") == 2  # the header, then the one event
    assert out.startswith("AT  ACTOR  ACTION  SUBJECT  CHANGED\n")
    assert f"key {key_id}" in out
    code, out, _ = tdb("events", "list", "--json", "--source-id", registered["id"])
    assert [e["action"] for e in json.loads(out)] == ["source.registered"]
    assert tdb("events", "list", "--since", "yesterday")[0] == 1
