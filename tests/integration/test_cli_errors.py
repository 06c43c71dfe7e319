"""A refused operation tells a script what the API tells a client: with `--json`, the CLI writes
the API's problem document (the one JSON value on stdout, as an answer would be), and its exit
status says which kind of failure it was."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar.testing import TestClient

from entrypoints.settings import Settings
from tests.builders import SEED_BODY, assert_problem

CSV_SOURCE = {"name": "a", "source_type": "csv", "connection": {"path": "a.csv"}}


@attrs.frozen
class Both:
    """The HTTP app and the CLI on one SQLite store (and one CSV root) in tmp_path."""

    client: TestClient[Any]
    admin: dict[str, str]
    token: Callable[..., str]
    run: Callable[..., tuple[int, str, str]]
    capsys: pytest.CaptureFixture[str]
    dir: Path

    def tdb(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()  # the server's log lines so far
        return self.run(*args)

    def file(self, name: str, value: Any) -> str:
        path = self.dir / name
        path.write_text(json.dumps(value))
        return str(path)

    def csv_source(self) -> dict[str, Any]:
        (self.dir / "data" / "a.csv").write_text("id\n1\n")
        response = self.client.post("/v1/sources", json=CSV_SOURCE, headers=self.admin)
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
def both(
    client: TestClient[Any],
    admin: dict[str, str],
    make_token: Callable[..., str],
    tdb: Any,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Both:
    monkeypatch.setenv("TDB_DATABASE_URL", settings.database_url)
    return Both(client, admin, make_token, tdb, capsys, tmp_path)


# Each case: the request over HTTP and the same operation's `tdb` arguments.
Case = Callable[[Both], tuple[Any, list[str]]]


def _invalid_input(both: Both) -> tuple[Any, list[str]]:
    body = {"name": "", "source_type": "csv", "connection": {}, "colour": 1}
    return (
        both.client.post("/v1/sources", json=body, headers=both.admin),
        ["sources", "register", both.file("bad.json", body)],
    )


def _unknown_type(both: Both) -> tuple[Any, list[str]]:
    body = {**CSV_SOURCE, "source_type": "oracle"}
    return (
        both.client.post("/v1/sources", json=body, headers=both.admin),
        ["sources", "register", both.file("oracle.json", body)],
    )


def _not_found(both: Both) -> tuple[Any, list[str]]:
    missing = str(uuid.uuid4())
    return (
        both.client.get(f"/v1/sources/{missing}", headers=both.admin),
        ["sources", "show", missing],
    )


def _duplicate(both: Both) -> tuple[Any, list[str]]:
    both.csv_source()
    return (
        both.client.post("/v1/sources", json=CSV_SOURCE, headers=both.admin),
        ["sources", "register", both.file("a.json", CSV_SOURCE)],
    )


def _version_mismatch(both: Both) -> tuple[Any, list[str]]:
    source = both.csv_source()
    patch = {"description": "new"}
    return (
        both.client.patch(
            f"/v1/sources/{source['id']}", json=patch, headers={**both.admin, "If-Match": '"7"'}
        ),
        ["sources", "update", source["id"], both.file("patch.json", patch), "--if-match", "7"],
    )


def _verification_failed(both: Both) -> tuple[Any, list[str]]:
    body = {**CSV_SOURCE, "connection": {"path": "missing.csv"}}
    return (
        both.client.post("/v1/sources?verify=true", json=body, headers=both.admin),
        ["sources", "register", both.file("missing.json", body), "--verify"],
    )


def _backend_unavailable(both: Both) -> tuple[Any, list[str]]:
    source = both.csv_source()
    (both.dir / "data" / "a.csv").unlink()
    return (
        both.client.get(f"/v1/sources/{source['id']}/schema", headers=both.admin),
        ["sources", "schema", source["id"]],
    )


def _forbidden(both: Both) -> tuple[Any, list[str]]:
    reader = both.token("sources:read")
    return (
        both.client.post(
            "/v1/sources", json=CSV_SOURCE, headers={"Authorization": f"Bearer {reader}"}
        ),
        ["sources", "register", both.file("a.json", CSV_SOURCE), "--token", reader],
    )


def _unauthorized(both: Both) -> tuple[Any, list[str]]:
    bogus = "tdbk_bogus_token"
    return (
        both.client.get("/v1/sources", headers={"Authorization": f"Bearer {bogus}"}),
        ["sources", "list", "--token", bogus],
    )


# The case, the HTTP status, the exit status (docs/cli.md's table).
CASES: list[tuple[Case, int, int]] = [
    (_invalid_input, 400, 1),
    (_unknown_type, 400, 1),
    (_not_found, 404, 4),
    (_duplicate, 409, 5),
    (_version_mismatch, 412, 5),
    (_verification_failed, 422, 6),
    (_backend_unavailable, 503, 6),
    (_forbidden, 403, 8),
    (_unauthorized, 401, 8),
]


@pytest.mark.parametrize(
    ("case", "status", "exit_status"), CASES, ids=[c[0].__name__.strip("_") for c in CASES]
)
def test_the_cli_json_error_is_the_api_problem(
    both: Both, case: Case, status: int, exit_status: int
) -> None:
    response, args = case(both)
    problem = assert_problem(response, status)
    code, out, err = both.tdb(*args, "--json")
    assert code == exit_status, err
    assert out.count("\n") == 1, out
    assert "error:" not in err
    answer = json.loads(out)
    assert {k: answer.get(k) for k in ("type", "status", "reason")} == {
        k: problem.get(k) for k in ("type", "status", "reason")
    }
    # The whole document, but the request id only a server has.
    assert answer == {k: v for k, v in problem.items() if k != "request_id"}


@pytest.mark.parametrize(
    ("case", "exit_status"),
    [(c, e) for c, _, e in CASES],
    ids=[c[0].__name__.strip("_") for c in CASES],
)
def test_without_json_the_same_exit_status_and_error_lines(
    both: Both, case: Case, exit_status: int
) -> None:
    _, args = case(both)
    code, out, err = both.tdb(*args)
    assert code == exit_status, err
    assert out == ""
    # (A backend's failure is also a warning in the log, on stderr before it.)
    assert err.splitlines()[-1].startswith("error: "), err


def test_an_unknown_key_is_not_found(tdb: Any) -> None:
    code, out, _ = tdb("keys", "revoke", "nope", "--json")
    assert code == 4
    assert json.loads(out) == {
        "type": "urn:tdb:problem:api-key-not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "No API key has this id.",
    }


def test_a_store_that_cannot_be_reached_is_7(
    tdb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A path SQLite cannot open as a database (a missing file is refused before: see
    # test_cli_output.py).
    (tmp_path / "dir.db").mkdir()
    monkeypatch.setenv("TDB_DATABASE_URL", f"sqlite:///{tmp_path / 'dir.db'}")
    code, out, _ = tdb("sources", "list", "--json")
    assert code == 7
    answer = json.loads(out)
    assert (answer["type"], answer["status"], answer["reason"]) == (
        "urn:tdb:problem:store-unavailable",
        503,
        "store_unavailable",
    )


def test_a_secret_the_key_cannot_decrypt_is_9(
    tdb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "orders.json"
    file.write_text(json.dumps(SEED_BODY))
    code, out, err = tdb("sources", "register", str(file), "--json")
    assert code == 0, err
    source_id = json.loads(out)["id"]
    # Another key than the one beside the store, which the secret was stored with.
    monkeypatch.setenv("TDB_SECRET_KEY", base64.urlsafe_b64encode(bytes(32)).decode())
    code, out, _ = tdb("sources", "show", source_id, "--show-secrets", "--json")
    assert code == 9
    assert json.loads(out)["type"] == "urn:tdb:problem:secret-unreadable"
    code, out, err = tdb("sources", "show", source_id, "--show-secrets")
    assert (code, out) == (9, "")
    assert err.startswith("error: ")


@pytest.mark.parametrize(
    ("args", "exit_status"),
    [
        (["sources", "show", "--json"], 2),  # a missing argument
        (["sources", "list", "--json", "--bogus"], 2),  # an unknown option
        (["sources", "inspect-all", "--json", "--concurrency", "0"], 1),  # 2 is "breaking"
    ],
)
def test_a_usage_error_with_json_is_one_problem_too(
    tdb: Any, args: list[str], exit_status: int
) -> None:
    code, out, err = tdb(*args)
    assert code == exit_status
    answer = json.loads(out)
    assert (answer["type"], answer["status"]) == ("urn:tdb:problem:invalid-input", 400)
    assert answer["detail"]
    assert "error:" not in err
