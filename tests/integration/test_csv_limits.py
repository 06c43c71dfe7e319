"""The CSV connector's hard limits: character sets only, no hard links or store files, width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.connectors.csv import CHARACTER_SETS, CsvConnector
from domain.errors import BackendUnavailable, InvalidConnection


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
        CsvConnector(root).validate({"path": "a.csv", "encoding": encoding})
    assert [e.field for e in caught.value.errors] == ["connection.encoding"]


@pytest.mark.parametrize("encoding", ["UTF8", "latin1", "Windows-1252", "utf-16", "Shift-JIS"])
def test_character_sets_are_accepted_under_any_alias(root: Path, encoding: str) -> None:
    connection = CsvConnector(root).validate({"path": "a.csv", "encoding": encoding})
    assert connection["encoding"] == encoding


@given(encoding=st.sampled_from(sorted(CHARACTER_SETS)), data=st.binary(min_size=1, max_size=64))
def test_any_bytes_in_any_accepted_encoding_give_columns_or_a_reason(
    tmp_path_factory: pytest.TempPathFactory, encoding: str, data: bytes
) -> None:
    root = tmp_path_factory.mktemp("root")
    (root / "a.csv").write_bytes(b"a,b\n" + data)
    connector = CsvConnector(root)
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
        CsvConnector(root).inspect({"path": "a.csv", "encoding": encoding})
    assert caught.value.reason == "unreadable"
