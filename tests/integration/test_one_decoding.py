"""The HTTP API and the CLI decode a body through the same request types: same body, same errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.builders import SEED_BODY, assert_problem

# An IP literal: the CLI's container resolves host names with the system's resolver.
SOURCE = {**SEED_BODY, "connection": {**SEED_BODY["connection"], "host": "127.0.0.1"}}


def _cli_errors(err: str) -> list[tuple[str, str]]:
    lines = err.splitlines()
    assert all(line.startswith("error: ") for line in lines), err
    return [tuple(line.removeprefix("error: ").split(": ", 1)) for line in lines]  # type: ignore[misc]


def _http_errors(response: Any) -> list[tuple[str, str]]:
    return [(e["field"], e["message"]) for e in assert_problem(response, 400)["errors"]]


@pytest.mark.parametrize(
    "payload",
    [
        {**SOURCE, "colour": 1, "name": ""},
        {"zz": 1, "tags": "x"},
        {**SOURCE, "name": 5, "description": [], "tags": [1, "a", None]},
        {**SOURCE, "source_type": None, "connection": "host=db"},
        {**SOURCE, "name": " ", "description": "x" * 501, "tags": ["a", "a"]},
        {**SOURCE, "connection": {"host": "127.0.0.1", "port": "5432", "nope": 1}},
    ],
)
def test_a_registration_body_gets_the_same_errors_both_ways(
    client: TestClient[Any],
    admin: dict[str, str],
    tdb: Any,
    tmp_path: Path,
    payload: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    http = _http_errors(client.post("/v1/sources", json=payload, headers=admin))
    file = tmp_path / "body.json"
    file.write_text(json.dumps(payload))
    capsys.readouterr()  # the server's log lines so far
    code, _, err = tdb("sources", "register", str(file))
    assert code == 1
    assert _cli_errors(err) == http
    assert http


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "x", "nope": 1},
        {"name": None, "tags": "x", "description": 1},
        {"name": "", "connection": {"port": "x"}},
        {"connection": []},
    ],
)
def test_a_merge_patch_gets_the_same_errors_both_ways(
    client: TestClient[Any],
    admin: dict[str, str],
    tdb: Any,
    tmp_path: Path,
    changes: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = client.post("/v1/sources", json=SOURCE, headers=admin).json()
    http = _http_errors(
        client.patch(
            f"/v1/sources/{source['id']}",
            content=json.dumps(changes).encode(),
            headers={**admin, "Content-Type": "application/merge-patch+json"},
        )
    )
    file = tmp_path / "source.json"
    file.write_text(json.dumps(SOURCE))
    capsys.readouterr()  # the server's log lines so far
    code, out, _ = tdb("sources", "register", str(file), "--json")
    assert code == 0
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps(changes))
    code, _, err = tdb("sources", "update", json.loads(out)["id"], str(patch))
    assert code == 1
    assert _cli_errors(err) == http
    assert http


def test_a_file_that_is_not_utf8_gets_the_error_a_body_gets(
    client: TestClient[Any],
    admin: dict[str, str],
    tdb: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    content = json.dumps({**SOURCE, "name": "@"}).encode().replace(b"@", b"\xff")
    response = client.post(
        "/v1/sources", content=content, headers={**admin, "Content-Type": "application/json"}
    )
    http = _http_errors(response)
    assert http == [("body", "is not valid UTF-8")]
    file = tmp_path / "body.json"
    file.write_bytes(content)
    capsys.readouterr()  # the server's log lines so far
    code, _, err = tdb("sources", "register", str(file))
    assert (code, _cli_errors(err)) == (1, [("file", "is not valid UTF-8")])
    good = tmp_path / "good.json"
    good.write_text(json.dumps(SOURCE))
    code, out, _ = tdb("sources", "register", str(good), "--json")
    assert code == 0
    code, _, err = tdb("sources", "update", json.loads(out)["id"], str(file))
    assert (code, _cli_errors(err)) == (1, [("file", "is not valid UTF-8")])
