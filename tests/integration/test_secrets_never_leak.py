"""A registered password appears in no list, no error body, no log line and no CLI output for a key
without the `sources:secrets` scope."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pytest
from litestar.testing import TestClient

from entrypoints.cli.main import main
from entrypoints.container import sqlite_path
from entrypoints.settings import Settings
from tests.helpers import free_port
from tests.integration.conftest import Token


def test_the_password_never_leaks_to_a_key_without_the_secrets_scope(
    client: TestClient[Any],
    make_token: Token,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    password = f"pw-{secrets.token_hex(8)}"
    admin = {"Authorization": f"Bearer {make_token()}"}
    reader_token = make_token("sources:read", "sources:write")
    reader = {"Authorization": f"Bearer {reader_token}"}
    connection = {
        "host": "127.0.0.1",
        "port": free_port(),
        "dbname": "d",
        "user": "u",
        "password": password,
        "table": "t",
    }
    source = {"name": "secretive", "source_type": "postgres", "connection": connection}
    created = client.post("/v1/sources", json=source, headers=admin)
    assert created.status_code == 201
    source_id = created.json()["id"]

    seen: list[str] = []
    seen.append(
        client.get("/v1/sources", headers=admin).text
    )  # even for admin: a list has no connection
    seen.append(client.get("/v1/sources", headers=reader).text)
    seen.append(client.get(f"/v1/sources/{source_id}", headers=reader).text)
    duplicate = client.post("/v1/sources", json=source, headers=reader)
    assert duplicate.status_code == 409
    bad_port = client.post(
        "/v1/sources",
        json={**source, "name": "other", "connection": {**connection, "port": "x"}},
        headers=reader,
    )
    assert bad_port.status_code == 400
    unknown_field = client.post(
        "/v1/sources",
        json={**source, "name": "other", "connection": {**connection, "passwd": password}},
        headers=reader,
    )
    assert unknown_field.status_code == 400
    unreachable = client.get(f"/v1/sources/{source_id}/schema", headers=reader)
    assert unreachable.status_code == 503
    seen += [duplicate.text, bad_port.text, unknown_field.text, unreachable.text]
    assert (
        client.get(f"/v1/sources/{source_id}", headers=reader).json()["connection"]["password"]
        == "********"
    )

    monkeypatch.setenv("TDB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TDB_CSV_ROOT", str(settings.csv_root))
    capsys.readouterr()
    printed: list[str] = []
    for args, expected_code in (
        (["sources", "show", source_id, "--token", reader_token], 0),
        (["sources", "show", source_id, "--json", "--token", reader_token], 0),
        (["sources", "list", "--json", "--token", reader_token], 0),
        # The backend cannot be reached: the command fails, and its error names no secret.
        (["sources", "schema", source_id, "--token", reader_token], 6),
        (["sources", "schema", source_id, "--json", "--token", reader_token], 6),
        (["sources", "show", source_id], 0),
    ):
        code = main(args)
        captured = capsys.readouterr()
        assert code == expected_code, (args, captured.out, captured.err)
        assert captured.out or captured.err, args
        printed += [captured.out, captured.err]
    seen += printed

    seen.append(caplog.text)
    for text in seen:
        assert password not in text
    assert any("********" in text for text in seen)
    # The CLI shows the masked password too, not only the HTTP API.
    assert any("********" in text for text in printed)


def test_the_password_is_not_stored_in_clear(
    client: TestClient[Any], make_token: Token, settings: Settings
) -> None:
    password = f"pw-{secrets.token_hex(8)}"
    connection = {"host": "h", "dbname": "d", "user": "u", "password": password, "table": "t"}
    response = client.post(
        "/v1/sources",
        json={"name": "s", "source_type": "postgres", "connection": connection},
        headers={"Authorization": f"Bearer {make_token()}"},
    )
    assert response.status_code == 201
    database = sqlite_path(settings)
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    assert password.encode() not in stored
    key_file = database.with_name(database.name + ".key")
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_the_store_password_reaches_no_log_line(tdb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # psycopg's pool quotes a password with unencoded spaces in its warnings.
    monkeypatch.setenv("TDB_STORE_TIMEOUT", "1")
    url = "postgresql://postgres:hunter2 SECRET@127.0.0.1:5432/x"
    code, out, err = tdb("db", "upgrade", "--database-url", url)
    assert code != 0
    assert "logger=psycopg.pool" in err, err
    for word in ("hunter2", "SECRET"):
        assert word not in err
        assert word not in out
