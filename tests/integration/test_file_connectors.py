"""The parquet and jsonl connectors on real files under a files root: types, the sandbox, and
files that are not what their type says."""

from __future__ import annotations

import datetime
import decimal
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.connectors.jsonl import JsonLinesConnector
from adapters.connectors.parquet import ParquetConnector
from domain.errors import BackendUnavailable, InvalidConnection
from domain.sources import Column
from entrypoints.settings import Settings
from tests.helpers import run

Connector = ParquetConnector | JsonLinesConnector


def columns(connector: Connector, path: str) -> list[tuple[str, str, bool | None]]:
    found = run(connector.inspect(run(connector.validate({"path": path}))))
    return [(c.name, c.type, c.nullable) for c in found]


def failure(connector: Connector, path: str) -> BackendUnavailable:
    with pytest.raises(BackendUnavailable) as caught:
        run(connector.inspect({"path": path}))
    return caught.value


PARQUET_TYPES: list[tuple[pa.DataType, Any, str]] = [
    (pa.int8(), 1, "smallint"),
    (pa.int16(), 1, "smallint"),
    (pa.uint8(), 1, "smallint"),
    (pa.int32(), 1, "integer"),
    (pa.uint16(), 1, "integer"),
    (pa.int64(), 1, "bigint"),
    (pa.uint32(), 1, "bigint"),
    (pa.uint64(), 1, "numeric"),
    (pa.decimal128(10, 2), decimal.Decimal("1.25"), "numeric"),
    (pa.float16(), None, "real"),
    (pa.float32(), 1.5, "real"),
    (pa.float64(), 1.5, "double precision"),
    (pa.bool_(), True, "boolean"),
    (pa.string(), "x", "text"),
    (pa.large_string(), "x", "text"),
    (pa.binary(), b"x", "bytea"),
    (pa.date32(), datetime.date(2026, 1, 2), "date"),
    (pa.time64("us"), datetime.time(1, 2), "time without time zone"),
    (pa.timestamp("us", tz="UTC"), datetime.datetime(2026, 1, 2), "timestamp with time zone"),
    (pa.timestamp("ms"), datetime.datetime(2026, 1, 2), "timestamp without time zone"),
    (pa.list_(pa.int32()), [1, 2], "jsonb"),
    (pa.struct([("a", pa.int32())]), {"a": 1}, "jsonb"),
    (pa.map_(pa.string(), pa.int32()), [("k", 1)], "jsonb"),
]


def test_parquet_types_come_from_the_footer(tmp_path: Path) -> None:
    arrays = [pa.array([value], type=kind) for kind, value, _ in PARQUET_TYPES]
    fields = [pa.field(f"c{i}", kind) for i, (kind, _, _) in enumerate(PARQUET_TYPES)]
    fields[0] = pa.field("c0", pa.int8(), nullable=False)
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), tmp_path / "t.parquet")
    found = columns(ParquetConnector(tmp_path), "t.parquet")
    assert [t for _, t, _ in found] == [expected for _, _, expected in PARQUET_TYPES]
    assert [n for _, _, n in found] == [False] + [True] * (len(PARQUET_TYPES) - 1)


def test_a_file_that_is_not_parquet_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "a.parquet").write_text("id,name\n1,x\n")
    (tmp_path / "empty.parquet").write_bytes(b"")
    # The right magic numbers around a footer length larger than the file.
    (tmp_path / "liar.parquet").write_bytes(b"PAR1" + b"\0" * 8 + b"\xff\xff\xff\x7fPAR1")
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1" + b"\x07" * 40 + b"\x10\0\0\0PAR1")
    connector = ParquetConnector(tmp_path)
    assert failure(connector, "a.parquet").reason == "unreadable"
    assert "not a Parquet file" in failure(connector, "a.parquet").detail
    assert failure(connector, "empty.parquet").reason == "empty_file"
    assert "footer claims" in failure(connector, "liar.parquet").detail
    assert failure(connector, "garbage.parquet").reason == "unreadable"
    assert failure(connector, "missing.parquet").reason == "file_not_found"


@pytest.mark.parametrize("connector_class", [ParquetConnector, JsonLinesConnector])
def test_the_sandbox_of_the_csv_connector_holds(tmp_path: Path, connector_class: Any) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.jsonl").write_text('{"a": 1}\n')
    (root / "link.jsonl").symlink_to(outside / "secret.jsonl")
    os.link(outside / "secret.jsonl", root / "hard.jsonl")
    connector = connector_class(root)
    for path, problem in (("../outside/secret.jsonl", "'..'"), ("link.jsonl", "outside")):
        with pytest.raises(InvalidConnection) as caught:
            run(connector.validate({"path": path}))
        assert problem in caught.value.errors[0].message
    assert failure(connector, "link.jsonl").reason == "permission_denied"
    assert failure(connector, "hard.jsonl").reason == "permission_denied"
    assert failure(connector, str(outside / "secret.jsonl")).reason == "permission_denied"


def test_jsonl_types_keys_in_first_seen_order_and_nullability(tmp_path: Path) -> None:
    lines = [
        {"id": 1, "name": "a", "price": 1.5, "ok": True, "day": "2026-01-02", "tags": ["x"]},
        {"id": 2**40, "name": "b", "price": 2, "ok": False, "day": "2026-01-03", "extra": None},
        {"id": 3, "name": None, "price": 1e3, "day": "2026-01-04", "tags": {"k": 1}},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    (tmp_path / "t.jsonl").write_text(text)
    assert columns(JsonLinesConnector(tmp_path), "t.jsonl") == [
        ("id", "bigint", False),
        ("name", "text", True),
        ("price", "double precision", False),
        ("ok", "boolean", True),
        ("day", "date", False),
        ("tags", "jsonb", True),
        ("extra", "text", True),
    ]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"a": 1}\n[1, 2]\n', "line 2 is not a JSON object but an array"),
        (b'{"a": 1}\n\n{"a": \n', "line 3 is not valid JSON"),
        (b'{"a": 1}\n{"a": "\xff"}\n', "line 2 is not UTF-8"),
        (b"PAR1\x00\x01\x02", "line 1 is not valid JSON"),
    ],
)
def test_a_line_that_is_not_a_json_object_is_named(
    tmp_path: Path, content: bytes, says: str
) -> None:
    (tmp_path / "t.jsonl").write_bytes(content)
    caught = failure(JsonLinesConnector(tmp_path), "t.jsonl")
    assert caught.reason == "unreadable"
    assert says in caught.detail


def test_jsonl_reads_a_bounded_sample(tmp_path: Path) -> None:
    line = json.dumps({"id": 1, "note": "x" * 100}) + "\n"
    # Past the sample, a line that is not JSON at all is never read.
    (tmp_path / "big.jsonl").write_text(line * 20_000 + "not json\n")
    assert columns(JsonLinesConnector(tmp_path), "big.jsonl") == [
        ("id", "integer", False),
        ("note", "text", False),
    ]
    (tmp_path / "long.jsonl").write_text('{"a": "' + "x" * 2_000_000 + '"}\n')
    assert "line 1 is longer" in failure(JsonLinesConnector(tmp_path), "long.jsonl").detail
    assert failure(JsonLinesConnector(tmp_path), "none.jsonl").reason == "file_not_found"
    (tmp_path / "blank.jsonl").write_text("\n\n")
    assert failure(JsonLinesConnector(tmp_path), "blank.jsonl").reason == "empty_file"


def test_the_files_root_is_tdb_files_root_or_by_its_old_name_tdb_csv_root() -> None:
    assert Settings.from_env({"TDB_CSV_ROOT": "/old"}).files_directory == Path("/old")
    both = {"TDB_CSV_ROOT": "/old", "TDB_FILES_ROOT": "/new"}
    assert Settings.from_env(both).files_directory == Path("/new")
    assert Settings.from_env({}).files_directory == Path("data")


def test_a_column_is_a_column(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text('{"a": null}\n')
    found = run(JsonLinesConnector(tmp_path).inspect({"path": "t.jsonl"}))
    assert found == [Column("a", "text", True)]
