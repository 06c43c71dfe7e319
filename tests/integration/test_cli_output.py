"""What `tdb` tells a person at a terminal: which store it opened, what the next command needs
(a version, whether a change is breaking, the available types), headers over tables, a notice
when asked secrets are masked, one error line rather than a log line too; and keys whose names
and revocations say what happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from entrypoints.cli.main import main
from tests.builders import SEED_BODY
from tests.helpers import throwaway_database

CSV = {"name": "a", "source_type": "csv", "connection": {"path": "a.csv"}}


def _register(tdb: Any, tmp_path: Path, body: dict[str, Any], *args: str) -> dict[str, Any]:
    file = tmp_path / f"{body['name']}.json"
    file.write_text(json.dumps(body))
    code, out, err = tdb("sources", "register", str(file), "--json", *args)
    assert code == 0, err
    return dict(json.loads(out))


# --- a store is created by `db upgrade` or `serve`, never by another command ------------------


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory without a store, the default URL (`sqlite:///tdb.sqlite3`) pointing into it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TDB_DATABASE_URL", raising=False)
    monkeypatch.delenv("TDB_SECRET_KEY", raising=False)
    monkeypatch.delenv("TDB_TOKEN", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["sources", "list"],
        ["keys", "list"],
        ["keys", "create", "--name", "etl"],
        ["events", "list"],
        ["sources", "inspect-all"],
    ],
)
def test_a_command_refuses_to_create_a_store(
    nowhere: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code = main(args)
    captured = capsys.readouterr()
    assert code == 7, captured  # the store cannot be reached
    assert captured.out == ""
    assert captured.err == (
        "error: there is no store at tdb.sqlite3: run `tdb db upgrade` (or `tdb serve`) first"
        " to create one\n"
    )
    assert sorted(p.name for p in nowhere.iterdir()) == []


def test_with_json_the_missing_store_is_a_problem(
    nowhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sources", "list", "--json"]) == 7
    captured = capsys.readouterr()
    problem = json.loads(captured.out)
    assert (problem["type"], problem["status"], problem["reason"]) == (
        "urn:tdb:problem:store-unavailable",
        503,
        "store_missing",
    )
    assert "tdb.sqlite3" in problem["detail"]
    assert "tdb db upgrade" in problem["detail"]
    assert captured.err == ""
    assert list(nowhere.iterdir()) == []


def test_db_upgrade_creates_the_store_and_then_commands_use_it(
    nowhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    assert "Applied migrations" in capsys.readouterr().out
    assert (nowhere / "tdb.sqlite3").exists()
    assert main(["sources", "list"]) == 0
    assert main(["keys", "create", "--name", "etl"]) == 0  # the key file is made when needed


def test_a_postgresql_store_is_upgraded_by_any_command_as_before(
    postgres_admin_url: str, nowhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with throwaway_database(postgres_admin_url, "tdb_cli_new") as url:
        env = ["--database-url", url]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TDB_SECRET_KEY", "k" * 32)
            assert main(["sources", "list", "--json", *env]) == 0
            assert json.loads(capsys.readouterr().out) == []
    assert list(nowhere.iterdir()) == []


# --- human output shows what the next command needs --------------------------------------------


def test_show_and_update_print_the_version(tdb: Any, tmp_path: Path) -> None:
    record = _register(tdb, tmp_path, SEED_BODY)
    code, out, _ = tdb("sources", "show", record["id"])
    assert code == 0
    assert "version: 1" in out.splitlines()
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"description": "new"}))
    code, out, err = tdb("sources", "update", record["id"], str(patch), "--if-match", "1")
    assert code == 0, err
    assert "version: 2" in out.splitlines()


def test_tables_have_a_header_in_human_output_only(tdb: Any, tmp_path: Path) -> None:
    record = _register(tdb, tmp_path, SEED_BODY)
    assert tdb("keys", "create", "--name", "etl")[0] == 0
    for args, header in (
        (["sources", "list"], "ID  NAME  SOURCE_TYPE  REGISTERED_AT  TAGS"),
        (["keys", "list"], "KEY_ID  NAME  SCOPES  CREATED_AT  EXPIRES_AT  LAST_USED_AT  STATE"),
        (["events", "list"], "AT  ACTOR  ACTION  SUBJECT  CHANGED"),
    ):
        code, out, _ = tdb(*args)
        assert code == 0
        lines = out.splitlines()
        assert lines[0] == header, out
        assert len(lines) == 3 if args[0] == "events" else 2, out  # a line per item after it
        code, out, _ = tdb(*args, "--json")
        assert isinstance(json.loads(out), list)
    assert tdb("sources", "list")[1].splitlines()[1].startswith(record["id"] + "  orders  ")


def test_an_empty_table_prints_its_header_alone(tdb: Any) -> None:
    code, out, _ = tdb("sources", "list")
    assert (code, out) == (0, "ID  NAME  SOURCE_TYPE  REGISTERED_AT  TAGS\n")


def test_events_list_says_which_schema_changes_are_breaking(tdb: Any, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    table = tmp_path / "data" / "a.csv"
    table.write_text("id,name\n1,x\n")
    record = _register(tdb, tmp_path, CSV)
    assert tdb("sources", "schema", record["id"])[0] == 0  # the first snapshot
    table.write_text("id\n1\n")  # `name` removed: breaking
    assert tdb("sources", "schema", record["id"])[0] == 0
    table.write_text("id,email\n1,x\n")  # `email` added: not breaking
    assert tdb("sources", "schema", record["id"])[0] == 0
    code, out, _ = tdb("events", "list", "--action", "source.schema_changed")
    assert code == 0
    lines = out.splitlines()[1:]
    assert len(lines) == 3, out
    assert [line.endswith("  breaking") for line in lines] == [False, True, False], out


# --- a notice when --show-secrets cannot be honoured ---------------------------------------------


def test_show_secrets_with_a_key_lacking_the_scope_says_they_are_masked(
    tdb: Any, tmp_path: Path
) -> None:
    record = _register(tdb, tmp_path, SEED_BODY)
    reader = tdb("keys", "create", "--name", "r", "--scope", "sources:read")[1].splitlines()[-1]
    code, out, err = tdb("sources", "show", record["id"], "--show-secrets", "--token", reader)
    assert code == 0
    assert "  password: ********" in out.splitlines()
    assert err == "notice: secrets are masked: this API key lacks the scope sources:secrets\n"
    # Without --show-secrets nothing was asked; with --json stdout's value says it (and stderr
    # holds log lines only); a key with the scope sees them.
    assert tdb("sources", "show", record["id"], "--token", reader)[2] == ""
    masked = tdb("sources", "show", record["id"], "--show-secrets", "--json", "--token", reader)
    assert masked[2] == ""
    admin = tdb("keys", "create", "--name", "all")[1].splitlines()[-1]
    code, out, err = tdb("sources", "show", record["id"], "--show-secrets", "--token", admin)
    assert (code, err) == (0, "")
    assert "  password: s3cret" in out.splitlines()


# --- one error line for a failed --verify ------------------------------------------------------


def test_a_failed_verify_prints_the_error_alone(tdb: Any, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    file = tmp_path / "a.json"
    file.write_text(json.dumps(CSV))  # data/a.csv does not exist
    code, out, err = tdb("sources", "register", str(file), "--verify")
    assert code == 6
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert "a.csv" in err or "file_not_found" in err
    (tmp_path / "data" / "a.csv").write_text("id\n1\n")
    record = _register(tdb, tmp_path, CSV)
    (tmp_path / "data" / "a.csv").unlink()
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps({"description": "x"}))
    code, _, err = tdb("sources", "update", record["id"], str(patch), "--verify")
    assert code == 6
    assert len(err.splitlines()) == 1, err
    code, out, err = tdb("sources", "test", record["id"])
    assert (code, err) == (6, "")
    assert out.startswith("failed: file_not_found")


# --- an unknown source_type lists the available ones ------------------------------------------


def test_an_unknown_source_type_lists_the_available_types(tdb: Any, tmp_path: Path) -> None:
    file = tmp_path / "a.json"
    file.write_text(json.dumps({**CSV, "source_type": "oracle"}))
    code, out, err = tdb("sources", "register", str(file))
    assert (code, out) == (1, "")
    assert err == (
        "error: source_type 'oracle' is not registered;"
        " available: csv, jsonl, mysql, parquet, postgres\n"
    )


# --- key names and revocations ------------------------------------------------------------------


def test_a_name_an_active_key_has_is_refused(tdb: Any) -> None:
    assert tdb("keys", "create", "--name", "etl")[0] == 0
    code, out, err = tdb("keys", "create", "--name", "etl")
    assert (code, out) == (5, "")  # a conflict
    assert err == (
        "error: an active API key is already named 'etl'; revoke it first or choose another name\n"
    )
    code, out, _ = tdb("keys", "create", "--name", "etl", "--json")
    assert code == 5
    problem = json.loads(out)
    assert (problem["type"], problem["status"]) == ("urn:tdb:problem:duplicate-key-name", 409)
    keys = json.loads(tdb("keys", "list", "--json")[1])
    assert [k["name"] for k in keys] == ["etl"]
    code, _, _ = tdb("keys", "revoke", keys[0]["key_id"])
    assert code == 0
    assert tdb("keys", "create", "--name", "etl")[0] == 0  # the name is free again


def test_revoking_a_revoked_key_says_so_and_records_nothing(tdb: Any) -> None:
    token = tdb("keys", "create", "--name", "etl")[1].splitlines()[-1]
    key_id = token.split("_")[1]
    code, out, _ = tdb("keys", "revoke", key_id)
    assert (code, out) == (0, f"Revoked API key {key_id} (etl)\n")
    revoked_at = json.loads(tdb("keys", "list", "--json")[1])[0]["revoked_at"]
    code, out, _ = tdb("keys", "revoke", f"tdbk_{key_id}")
    assert (code, out) == (0, f"API key {key_id} (etl) was already revoked at {revoked_at}\n")
    code, out, _ = tdb("keys", "revoke", key_id, "--json")
    assert code == 0
    assert json.loads(out)["revoked_at"] == revoked_at
    events = json.loads(tdb("events", "list", "--json", "--action", "key.revoked")[1])
    assert len(events) == 1
