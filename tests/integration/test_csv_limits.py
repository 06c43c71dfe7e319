"""The CSV connector's hard limits: character sets only, no hard links or store files, width."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from adapters.connectors.csv import CHARACTER_SETS, CsvConnector
from adapters.connectors.deadline import Deadline
from adapters.connectors.workers import WorkerProcesses
from domain.errors import BackendUnavailable, InvalidConnection
from entrypoints.container import sqlite_path
from entrypoints.settings import Settings
from tests.helpers import Synced


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.mark.parametrize(
    "encoding", ["undefined", "punycode", "idna", "utf-7", "unicode_escape", "rot13", "base64"]
)
def test_codecs_that_are_not_character_sets_are_refused(root: Path, encoding: str) -> None:
    with pytest.raises(InvalidConnection) as caught:
        Synced(CsvConnector(root)).validate({"path": "a.csv", "encoding": encoding})
    assert [e.field for e in caught.value.errors] == ["connection.encoding"]


@pytest.mark.parametrize("encoding", ["UTF8", "latin1", "Windows-1252", "utf-16", "Shift-JIS"])
def test_character_sets_are_accepted_under_any_alias(root: Path, encoding: str) -> None:
    connection = Synced(CsvConnector(root)).validate({"path": "a.csv", "encoding": encoding})
    assert connection["encoding"] == encoding


@given(encoding=st.sampled_from(sorted(CHARACTER_SETS)), data=st.binary(min_size=1, max_size=64))
def test_any_bytes_in_any_accepted_encoding_give_columns_or_a_reason(
    tmp_path_factory: pytest.TempPathFactory, encoding: str, data: bytes
) -> None:
    root = tmp_path_factory.mktemp("root")
    (root / "a.csv").write_bytes(b"a,b\n" + data)
    connector = Synced(CsvConnector(root))
    connection = connector.validate({"path": "a.csv", "encoding": encoding})
    outcome: Any
    try:
        outcome = connector.inspect(connection)
    except BackendUnavailable as exc:
        outcome = exc
    # Columns, or one of the reasons bad bytes give: never another exception (a 500).
    assert outcome if isinstance(outcome, list) else outcome.reason in ("unreadable", "empty_file")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_utf16_or_utf32_file_without_its_bom_is_unreadable(root: Path, encoding: str) -> None:
    (root / "a.csv").write_bytes(b"a,b\n1,2\n")
    with pytest.raises(BackendUnavailable) as caught:
        Synced(CsvConnector(root)).inspect({"path": "a.csv", "encoding": encoding})
    assert caught.value.reason == "unreadable"


# --- width ---------------------------------------------------------------------------------


def test_a_record_wider_than_postgresql_allows_is_too_many_columns(root: Path) -> None:
    # Two records of 524 288 empty fields: a 1 MiB file that once answered a 57 MB schema.
    (root / "wide.csv").write_text(("," * 524_287 + "\n") * 2)
    with pytest.raises(BackendUnavailable) as caught:
        Synced(CsvConnector(root)).inspect({"path": "wide.csv"})
    assert caught.value.reason == "too_many_columns"
    assert "1600" in caught.value.detail


def test_a_wider_record_further_down_is_too_many_columns(root: Path) -> None:
    (root / "wide.csv").write_text("a,b\n1,2\n" * 1000 + "," * 1600 + "\n")
    with pytest.raises(BackendUnavailable) as caught:
        Synced(CsvConnector(root)).inspect({"path": "wide.csv"})
    assert caught.value.reason == "too_many_columns"


def test_records_longer_than_the_sample_are_unreadable_at_once(root: Path) -> None:
    (root / "wide.csv").write_text(("," * 1_048_576 + "\n") * 2)
    with pytest.raises(BackendUnavailable) as caught:
        Synced(CsvConnector(root)).inspect({"path": "wide.csv"})
    assert caught.value.reason == "unreadable"


def test_1600_columns_are_read(root: Path) -> None:
    (root / "wide.csv").write_text(
        ",".join(f"c{i}" for i in range(1600)) + "\n" + "1," * 1599 + "1\n"
    )
    columns = Synced(CsvConnector(root)).inspect({"path": "wide.csv"})
    assert len(columns) == 1600
    assert {c.type for c in columns} == {"integer"}


def test_a_wide_file_is_typed_from_fewer_rows(root: Path) -> None:
    # Four cells allowed: two columns, so two rows; the text rows after them are not typed.
    (root / "a.csv").write_text("a,b\n1,2\n3,4\nx,y\n")
    columns = Synced(CsvConnector(root, max_cells=4)).inspect({"path": "a.csv"})
    assert [(c.name, c.type) for c in columns] == [("a", "integer"), ("b", "integer")]
    columns = Synced(CsvConnector(root, max_cells=6)).inspect({"path": "a.csv"})
    assert [(c.name, c.type) for c in columns] == [("a", "text"), ("b", "text")]


def test_a_ragged_file_costs_at_most_max_cells(root: Path) -> None:
    # One wide row, then ten thousand one-field rows: 16 million cells if typed naively.
    (root / "ragged.csv").write_text("," * 1599 + "\n" + "a\n" * 10_000)
    columns = Synced(CsvConnector(root)).inspect({"path": "ragged.csv", "header": False})
    assert len(columns) == 1600
    assert columns[1].nullable


def spin(deadline: Deadline) -> None:
    """Work with no end of its own: only its deadline stops it."""
    while True:
        deadline.check()


def process_id(deadline: Deadline) -> int:
    return os.getpid()


def test_overrunning_work_is_stopped_and_its_worker_serves_the_next_call() -> None:
    workers = WorkerProcesses(1)
    with pytest.raises(BackendUnavailable) as caught:
        workers.call(spin, 0.5, "endless work")
    assert caught.value.reason == "timeout"
    # One worker: this answer comes only once the endless work has stopped at its deadline.
    assert workers.call(process_id, 30, "next") != os.getpid()


def test_an_answer_and_an_error_come_back_from_the_worker(root: Path) -> None:
    (root / "a.csv").write_text("a,b\n1,x\n")
    connector = Synced(CsvConnector(root))
    assert [(c.name, c.type) for c in connector.inspect({"path": "a.csv"})] == [
        ("a", "integer"),
        ("b", "text"),
    ]
    with pytest.raises(BackendUnavailable) as caught:
        connector.inspect({"path": "missing.csv"})
    assert (caught.value.reason, caught.value.detail) == (
        "file_not_found",
        "no file 'missing.csv' in the files root",
    )


def test_an_expired_deadline_stops_an_inspection(root: Path) -> None:
    (root / "a.csv").write_text("a,b\n1,2\n")
    deadline = Deadline(0, "reading 'a.csv'")
    with pytest.raises(BackendUnavailable) as caught:
        Synced(CsvConnector(root))._inspect({"path": "a.csv", "header": True}, deadline)
    assert caught.value.reason == "timeout"


# --- links and the store's own files --------------------------------------------------------


def test_a_hard_link_is_permission_denied_under_either_name(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "outside.key"
    secret.write_text("secret-key-material\n1\n")
    os.link(secret, root / "k.csv")
    (root / "a.csv").write_text("a\n1\n")
    os.link(root / "a.csv", root / "b.csv")
    connector = Synced(CsvConnector(root))
    for name in ("k.csv", "a.csv", "b.csv"):
        with pytest.raises(BackendUnavailable) as caught:
            connector.inspect({"path": name})
        assert caught.value.reason == "permission_denied"
        assert "secret-key-material" not in caught.value.detail


def test_the_store_files_are_never_read_even_inside_the_root(root: Path) -> None:
    store = [root / "tdb.sqlite3", root / "tdb.sqlite3.key", root / "tdb.sqlite3-wal"]
    for file in store[:2]:
        file.write_text("a,b\n1,2\n")
    (root / "link.csv").symlink_to(root / "tdb.sqlite3.key")
    connector = Synced(CsvConnector(root, store_files=store))
    for name in ("tdb.sqlite3", "tdb.sqlite3.key", "tdb.sqlite3-wal", "link.csv", "./tdb.sqlite3"):
        with pytest.raises(InvalidConnection):
            connector.validate({"path": name})
        with pytest.raises(BackendUnavailable) as caught:
            connector.inspect({"path": name})
        assert caught.value.reason in ("permission_denied", "file_not_found")


# --- through the HTTP API ------------------------------------------------------------------


def _register(client: TestClient[Any], admin: dict[str, str], path: str) -> Any:
    body = {"name": path, "source_type": "csv", "connection": {"path": path}}
    return client.post("/v1/sources", json=body, headers=admin)


def _schema(client: TestClient[Any], admin: dict[str, str], path: str) -> Any:
    created = _register(client, admin, path)
    assert created.status_code == 201, created.text
    return client.get(f"/v1/sources/{created.json()['id']}/schema", headers=admin)


def test_a_hard_link_to_the_key_file_gives_no_key(
    client: TestClient[Any], admin: dict[str, str], settings: Settings
) -> None:
    database = sqlite_path(settings)
    key_file = database.with_name(database.name + ".key")
    key = key_file.read_text().strip()
    # Registered while the name is free, linked afterwards: inspection refuses it.
    created = _register(client, admin, "k.csv")
    assert created.status_code == 201
    os.link(key_file, settings.csv_root / "k.csv")
    response = client.get(f"/v1/sources/{created.json()['id']}/schema", headers=admin)
    assert response.status_code == 503
    assert response.json()["reason"] == "permission_denied"
    assert key not in response.text
    # Linked first: registration refuses it.
    os.link(key_file, settings.csv_root / "k2.csv")
    problem = _register(client, admin, "k2.csv").json()
    assert problem["status"] == 400
    assert key not in str(problem)


def test_a_wide_file_over_http_is_503_too_many_columns(
    client: TestClient[Any], admin: dict[str, str], settings: Settings
) -> None:
    (settings.csv_root / "wide.csv").write_text(("," * 524_287 + "\n") * 2)
    response = _schema(client, admin, "wide.csv")
    assert response.status_code == 503
    assert response.json()["reason"] == "too_many_columns"
    assert len(response.content) < 1000
