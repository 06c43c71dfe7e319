"""`tdb sources inspect-all`: every source inspected once, one line each, exit 2 on breaking."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from entrypoints.container import Container
from tests.fakes import FailingConnector


def register_csv(tdb: Any, tmp_path: Path, name: str, text: str | None) -> str:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if text is not None:
        (data / f"{name}.csv").write_text(text)
    body = tmp_path / f"{name}.json"
    body.write_text(
        json.dumps({"name": name, "source_type": "csv", "connection": {"path": f"{name}.csv"}})
    )
    code, out, err = tdb("sources", "register", str(body), "--json")
    assert code == 0, err
    source_id: str = json.loads(out)["id"]
    return source_id


def lines(out: str) -> dict[str, str]:
    """Each line's verdict, by source name."""
    verdicts = {}
    for line in out.strip().splitlines():
        _, name, verdict = line.split("  ", 2)
        verdicts[name] = verdict
    return verdicts


def test_inspect_all_reports_each_source_and_exits_2_on_a_breaking_change(
    tdb: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    ids = {
        name: register_csv(tdb, tmp_path, name, text)
        for name, text in (
            ("steady", "id,name\n1,a\n"),
            ("growing", "id\n1\n"),
            ("shrinking", "id,zip\n1,12345\n"),
            ("missing", None),
        )
    }
    code, out, _ = tdb("sources", "inspect-all", "--concurrency", "2")
    assert code == 0
    assert lines(out) == {
        "steady": "changed: first snapshot",
        "growing": "changed: first snapshot",
        "shrinking": "changed: first snapshot",
        "missing": "failed: file_not_found",
    }
    assert [line.split("  ")[0] for line in out.strip().splitlines()] == list(ids.values())

    (data / "growing.csv").write_text("id,note\n1,x\n")
    (data / "shrinking.csv").write_text("zip\n02134\n")
    code, out, _ = tdb("sources", "inspect-all")
    assert code == 2
    assert lines(out) == {
        "steady": "unchanged",
        "growing": "changed: added note",
        "shrinking": "breaking: removed id, type_changed zip (integer -> text)",
        "missing": "failed: file_not_found",
    }

    code, out, _ = tdb("sources", "inspect-all", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert {name: row["status"] for name, row in rows.items()} == {
        "steady": "unchanged",
        "growing": "unchanged",
        "shrinking": "unchanged",
        "missing": "failed",
    }
    assert rows["missing"]["reason"] == "file_not_found"
    assert rows["steady"]["fingerprint"].startswith("sha256:")


def test_inspect_all_with_json_lists_the_changes(tdb: Any, tmp_path: Path) -> None:
    register_csv(tdb, tmp_path, "people", "id,name\n1,a\n")
    assert tdb("sources", "inspect-all")[0] == 0
    (tmp_path / "data" / "people.csv").write_text("id\n1\n")
    code, out, _ = tdb("sources", "inspect-all", "--json")
    assert code == 2
    (row,) = json.loads(out)
    assert row["status"] == "breaking"
    assert row["changes"] == [
        {
            "column": "name",
            "change": "removed",
            "before": {"name": "name", "type": "text", "nullable": False},
            "after": None,
            "breaking": True,
        }
    ]


def test_an_unexpected_error_fails_its_source_and_the_others_are_still_reported(
    tdb: Any, tmp_path: Path
) -> None:
    broken = FailingConnector("postgres")
    with Container.postgres_connector.override(providers.Object(broken)):
        body = tmp_path / "broken.json"
        body.write_text(
            json.dumps({"name": "broken", "source_type": "postgres", "connection": {"table": "t"}})
        )
        assert tdb("sources", "register", str(body))[0] == 0
        register_csv(tdb, tmp_path, "shrinking", "id,zip\n1,12345\n")
        register_csv(tdb, tmp_path, "steady", "id\n1\n")
        code, out, err = tdb("sources", "inspect-all", "--concurrency", "1")
        assert code == 0, err
        assert lines(out) == {
            "broken": "failed: internal_error",
            "shrinking": "changed: first snapshot",
            "steady": "changed: first snapshot",
        }

        (tmp_path / "data" / "shrinking.csv").write_text("zip\n02134\n")
        code, out, err = tdb("sources", "inspect-all", "--concurrency", "1")
        assert code == 2, err
        assert lines(out) == {
            "broken": "failed: internal_error",
            "shrinking": "breaking: removed id, type_changed zip (integer -> text)",
            "steady": "unchanged",
        }
        # The error is the operator's to read in the log, not a script's on stdout.
        assert "Traceback" not in out
        assert "internal detail" not in out
        assert "RuntimeError" in err

        code, out, _ = tdb("sources", "inspect-all", "--json")
        assert code == 0
        rows = {row["name"]: row for row in json.loads(out)}
        assert rows["broken"]["status"] == "failed"
        assert rows["broken"]["reason"] == "internal_error"
        assert "internal detail" not in rows["broken"]["detail"]
    assert len(broken.seen) == 3


@pytest.mark.parametrize(
    "args", [["--concurrency", "0"], ["--concurrency", "many"], ["--bogus"], ["extra"]]
)
def test_usage_errors_exit_1(tdb: Any, args: list[str]) -> None:
    code, _, err = tdb("sources", "inspect-all", *args)
    assert code == 1
    assert "error" in err


def test_a_store_error_exits_7(tdb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDB_DATABASE_URL", f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    code, _, err = tdb("sources", "inspect-all")
    assert code == 7  # the store is unavailable, as for every command
    assert "error" in err


# A column name that would forge a line of its own, and one that would colour the terminal.
FORGED = "ok\n00000000-0000-0000-0000-000000000000  payments  unchanged"
COLOURED = "\x1b[31mred\x1b[0m"
# What a terminal acts on rather than shows: C0 and C1 controls, DEL, line separators.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _no_unprintable(out: str) -> None:
    for line in out.splitlines():
        assert not UNPRINTABLE.search(line), repr(line)


def test_names_from_a_backend_cannot_forge_lines_or_escapes(tdb: Any, tmp_path: Path) -> None:
    source_id = register_csv(tdb, tmp_path, "payments", "id\n1\n")
    register_csv(tdb, tmp_path, "orders", "id\n1\n")
    assert tdb("sources", "inspect-all")[0] == 0
    forged = FORGED.replace("\n", "\r\n") + "\u2028x\x85y"
    header = ",".join(f'"{name}"' for name in ("id", forged, COLOURED))  # CSV quoting
    (tmp_path / "data" / "payments.csv").write_text(f"{header}\n1,2,3\n")

    code, out, _ = tdb("sources", "inspect-all")
    assert code == 0
    assert out.endswith("\n")
    assert len(out.splitlines()) == 2, out
    _no_unprintable(out)
    verdicts = lines(out)
    assert set(verdicts) == {"payments", "orders"}
    assert verdicts["orders"] == "unchanged"
    assert "\\n00000000-0000-0000-0000-000000000000" in verdicts["payments"]
    assert "\\x1b[31mred" in verdicts["payments"]

    code, out, _ = tdb("sources", "schema", source_id)
    assert code == 0
    assert len(out.splitlines()) == 3, out
    _no_unprintable(out)
    # --json is JSON: the names as they are, encoded.
    code, out, _ = tdb("sources", "schema", source_id, "--json")
    assert [column["name"] for column in json.loads(out)["columns"]] == ["id", forged, COLOURED]
