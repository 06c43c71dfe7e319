"""The CSV connector on real files: sandboxing, dialects, names, types, sampling and failures."""

from __future__ import annotations

import os
import time as clock
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from adapters.connectors.csv import CsvConnector
from adapters.connectors.csv_inference import BLANKS, MISSING, value_type
from domain.errors import BackendUnavailable, InvalidConnection
from domain.sources import Column
from tests.helpers import Synced


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def csv_connector(root: Path) -> Any:
    return Synced(CsvConnector(root))


def write(root: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return name


def types(columns: list[Column] | Any) -> dict[str, str]:
    return {c.name: c.type for c in columns}


def names(columns: list[Column] | Any) -> list[str]:
    return [c.name for c in columns]


def unavailable(connector: Any, **connection: Any) -> BackendUnavailable:
    with pytest.raises(BackendUnavailable) as caught:
        connector.inspect(connection)
    return caught.value


def invalid_fields(connector: Any, **connection: Any) -> set[str]:
    with pytest.raises(InvalidConnection) as caught:
        connector.validate(connection)
    return {e.field for e in caught.value.errors}


# --- registration ---------------------------------------------------------------------------


def test_validate_fills_the_defaults_and_keeps_the_rest(csv_connector: Any) -> None:
    assert csv_connector.validate({"path": "a.csv"}) == {"path": "a.csv", "header": True}
    given = {"path": "d/a.csv", "delimiter": ";", "encoding": "latin-1", "header": False}
    assert csv_connector.validate(given) == given


def test_a_path_that_does_not_exist_yet_is_accepted(csv_connector: Any) -> None:
    assert csv_connector.validate({"path": "later/arrives.csv"})["path"] == "later/arrives.csv"
    assert unavailable(csv_connector, path="later/arrives.csv").reason == "file_not_found"


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../outside.csv", "a/../../b.csv", "a/../b.csv", "."]
)
def test_paths_that_leave_the_root_are_refused(csv_connector: Any, path: str) -> None:
    assert invalid_fields(csv_connector, path=path) == {"connection.path"}


def test_a_symlink_out_of_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    (root / "link.csv").symlink_to(tmp_path / "secret.csv")
    (root / "dir").symlink_to(tmp_path)
    connector = Synced(CsvConnector(root))
    assert invalid_fields(connector, path="link.csv") == {"connection.path"}
    assert invalid_fields(connector, path="dir/secret.csv") == {"connection.path"}


def test_a_symlink_inside_the_root_is_followed(root: Path, csv_connector: Any) -> None:
    write(root, "real/data.csv", "id\n1\n")
    (root / "alias.csv").symlink_to(root / "real" / "data.csv")
    assert csv_connector.validate({"path": "alias.csv"})
    assert csv_connector.inspect({"path": "alias.csv"}) == [Column("id", "integer", False)]


def test_a_symlink_swapped_after_registration_is_denied_at_inspection(
    root: Path, tmp_path: Path, csv_connector: Any
) -> None:
    write(root, "real.csv", "id\n1\n")
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    (root / "data.csv").symlink_to(root / "real.csv")
    connection = csv_connector.validate({"path": "data.csv"})
    (root / "data.csv").unlink()
    (root / "data.csv").symlink_to(tmp_path / "secret.csv")
    error = unavailable(csv_connector, **connection)
    assert error.reason == "permission_denied"
    assert "hunter2" not in str(error)


def test_a_dangling_symlink_out_of_the_root_does_not_tell_what_exists_outside(
    root: Path, tmp_path: Path, csv_connector: Any
) -> None:
    (root / "gone.csv").symlink_to(tmp_path / "no-such-file.csv")
    assert unavailable(csv_connector, path="gone.csv").reason == "permission_denied"


@pytest.mark.parametrize(
    ("connection", "fields"),
    [
        ({"path": "a.csv", "sheet": 1}, {"connection.sheet"}),
        ({}, {"connection.path"}),
        ({"path": ""}, {"connection.path"}),
        ({"path": "a.csv", "delimiter": ";;"}, {"connection.delimiter"}),
        ({"path": "a.csv", "delimiter": '"'}, {"connection.delimiter"}),
        ({"path": "a.csv", "delimiter": "\n"}, {"connection.delimiter"}),
        ({"path": "a.csv", "encoding": "klingon"}, {"connection.encoding"}),
        ({"path": "a.csv", "encoding": "rot13"}, {"connection.encoding"}),
        ({"path": "a.csv", "header": "yes"}, {"connection.header"}),
        (
            {"path": "/abs.csv", "delimiter": "", "x": 1},
            {"connection.path", "connection.delimiter", "connection.x"},
        ),
    ],
)
def test_bad_fields_are_all_named(
    csv_connector: Any, connection: dict[str, Any], fields: set[str]
) -> None:
    assert invalid_fields(csv_connector, **connection) == fields


# --- files that cannot be read ---------------------------------------------------------------


def test_a_directory_is_unreadable(root: Path, csv_connector: Any) -> None:
    (root / "dir.csv").mkdir()
    assert unavailable(csv_connector, path="dir.csv").reason == "unreadable"


def test_a_fifo_is_unreadable_and_does_not_block(root: Path, csv_connector: Any) -> None:
    os.mkfifo(root / "pipe.csv")
    started = clock.monotonic()
    assert unavailable(csv_connector, path="pipe.csv").reason == "unreadable"
    assert clock.monotonic() - started < 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file whatever its mode")
def test_a_file_the_service_may_not_read_is_permission_denied(
    root: Path, csv_connector: Any
) -> None:
    write(root, "locked.csv", "id\n1\n")
    (root / "locked.csv").chmod(0)
    assert unavailable(csv_connector, path="locked.csv").reason == "permission_denied"


def test_a_missing_root_is_file_not_found(tmp_path: Path) -> None:
    connector = Synced(CsvConnector(tmp_path / "no-root"))
    assert unavailable(connector, path="a.csv").reason == "file_not_found"


def test_binary_data_is_unreadable(root: Path, csv_connector: Any) -> None:
    write(root, "blob.csv", bytes(range(256)) * 64)
    write(root, "nulls.csv", b"id,name\n1,\x00\x00\n")
    write(root, "control.csv", b"\x01\x02\x03\x04,\x05\x06\x07\x08\n\x0e\x0f,\x10\x11\n")
    for path in ("blob.csv", "nulls.csv", "control.csv"):
        assert unavailable(csv_connector, path=path).reason == "unreadable", path


def test_bytes_that_do_not_decode_in_the_given_encoding_are_unreadable(
    root: Path, csv_connector: Any
) -> None:
    write(root, "latin.csv", "café\n1\n", encoding="latin-1")
    error = unavailable(csv_connector, path="latin.csv", encoding="utf-8")
    assert error.reason == "unreadable"
    assert "utf-8" in error.detail


@pytest.mark.parametrize("content", [b"", b"\n\n\r\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_empty_file(root: Path, csv_connector: Any, content: bytes) -> None:
    write(root, "empty.csv", content)
    assert unavailable(csv_connector, path="empty.csv").reason == "empty_file"
    assert unavailable(csv_connector, path="empty.csv", header=False).reason == "empty_file"


def test_a_header_without_rows_gives_nullable_text_columns(root: Path, csv_connector: Any) -> None:
    write(root, "header.csv", "id,name\n")
    assert csv_connector.inspect({"path": "header.csv"}) == [
        Column("id", "text", True),
        Column("name", "text", True),
    ]


# --- dialect -------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"])
def test_the_encoding_is_detected(root: Path, csv_connector: Any, encoding: str) -> None:
    header = "prix €,café" if encoding != "latin-1" else "prix,café"
    write(root, "enc.csv", f"{header}\n1,crème\n", encoding=encoding)
    columns = csv_connector.inspect({"path": "enc.csv"})
    assert names(columns) == header.split(",")


def test_a_given_encoding_is_used(root: Path, csv_connector: Any) -> None:
    write(root, "koi8.csv", "имя,n\nИван,1\n", encoding="koi8-r")  # noqa: RUF001
    columns = csv_connector.inspect({"path": "koi8.csv", "encoding": "koi8-r"})
    assert names(columns) == ["имя", "n"]


def test_a_bom_does_not_stick_to_the_first_name(root: Path, csv_connector: Any) -> None:
    write(root, "bom.csv", "\ufeffid,name\n1,x\n")
    assert names(csv_connector.inspect({"path": "bom.csv", "encoding": "utf-8"})) == ["id", "name"]
    assert names(csv_connector.inspect({"path": "bom.csv"})) == ["id", "name"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_detected(root: Path, csv_connector: Any, delimiter: str) -> None:
    rows = [["id", "price", "note"], ["1", "2.5", "a, b; c | d"], ["2", "3", "x"]]
    lines = [delimiter.join(f'"{cell}"' if " " in cell else cell for cell in r) for r in rows]
    write(root, "d.csv", "\n".join(lines) + "\n")
    assert types(csv_connector.inspect({"path": "d.csv"})) == {
        "id": "integer",
        "price": "numeric",
        "note": "text",
    }


def test_a_given_delimiter_wins(root: Path, csv_connector: Any) -> None:
    write(root, "colon.csv", "a:b,c\n1:2,3\n")
    assert names(csv_connector.inspect({"path": "colon.csv", "delimiter": ":"})) == ["a", "b,c"]
    assert names(csv_connector.inspect({"path": "colon.csv"})) == ["a:b", "c"]


def test_quoted_fields_hold_delimiters_newlines_and_quotes(root: Path, csv_connector: Any) -> None:
    content = 'id,comment,amount\r\n1,"one, two\r\nthree ""quoted""",1.5\r\n2,"x",2\r\n'
    write(root, "quoted.csv", content)
    assert csv_connector.inspect({"path": "quoted.csv"}) == [
        Column("id", "integer", False),
        Column("comment", "text", False),
        Column("amount", "numeric", False),
    ]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_any_line_ending_works_and_blank_lines_are_skipped(
    root: Path, csv_connector: Any, newline: str
) -> None:
    write(root, "nl.csv", newline.join(["", "id,day", "1,2024-01-31", "", "2,2024-02-01", ""]))
    assert types(csv_connector.inspect({"path": "nl.csv"})) == {"id": "integer", "day": "date"}


def test_a_long_field_inside_the_sample_is_data(root: Path, csv_connector: Any) -> None:
    write(root, "long.csv", f'id,blob\n1,"{"x" * 300_000}"\n2,y\n')
    assert types(csv_connector.inspect({"path": "long.csv"})) == {"id": "integer", "blob": "text"}


# --- names ---------------------------------------------------------------------------------


def test_blank_and_repeated_names_are_made_unique(root: Path, csv_connector: Any) -> None:
    write(root, "names.csv", "id, ,name,name,,id\n1,2,3,4,5,6\n")
    assert names(csv_connector.inspect({"path": "names.csv"})) == [
        "id",
        "column_2",
        "name",
        "name_2",
        "column_5",
        "id_2",
    ]


def test_without_a_header_columns_are_numbered_and_the_first_row_is_data(
    root: Path, csv_connector: Any
) -> None:
    write(root, "raw.csv", "1,x\n2,y\n")
    assert csv_connector.inspect({"path": "raw.csv", "header": False}) == [
        Column("column_1", "integer", False),
        Column("column_2", "text", False),
    ]


def test_ragged_rows_widen_the_table_and_leave_nulls(root: Path, csv_connector: Any) -> None:
    write(root, "ragged.csv", "a,b\n1,2\n3\n4,5,6\n")
    assert csv_connector.inspect({"path": "ragged.csv"}) == [
        Column("a", "integer", False),
        Column("b", "integer", True),
        Column("column_3", "integer", True),
    ]


# --- types, through the connector ----------------------------------------------------------


EVERY_TYPE = {
    "int": (["1", "-2", "3"], "integer", False),
    "big": (["3000000000", "1", ""], "bigint", True),
    "huge": (["99999999999999999999", "1", "2"], "numeric", False),
    "dec": (["0.5", "2", "NULL"], "numeric", True),
    "dbl": (["1e-3", "2.5", "inf"], "double precision", False),
    "flag": (["true", "no", "F"], "boolean", False),
    "bit": (["0", "1", "1"], "integer", False),
    "day": (["2024-01-31", "2024/02/01", "31 Jan 2024"], "date", False),
    "clock": (["10:00", "23:59:59.5", "N/A"], "time without time zone", True),
    "ts": (["2024-01-31 10:00:00", "2024-01-31T10:00:00.5", "2024-02-01"],
           "timestamp without time zone", False),
    "tstz": (["2024-01-31T10:00:00Z", "2024-01-31 10:00:00+05:30", "2024-02-01"],
             "timestamp with time zone", False),
    "zip": (["02134", "12345", "00501"], "text", False),
    "missing": (["NA", "", "null"], "text", True),
    "word": (["x", "y", ""], "text", True),
}  # fmt: skip


def test_every_type_of_the_vocabulary_is_inferred(root: Path, csv_connector: Any) -> None:
    rows = zip(*(cells for cells, _, _ in EVERY_TYPE.values()), strict=True)
    lines = [",".join(EVERY_TYPE), *(",".join(row) for row in rows)]
    write(root, "all.csv", "\n".join(lines) + "\n")
    assert csv_connector.inspect({"path": "all.csv"}) == [
        Column(name, type_name, nullable) for name, (_, type_name, nullable) in EVERY_TYPE.items()
    ]


# --- the bounded sample --------------------------------------------------------------------


def test_only_the_first_sample_bytes_are_read(root: Path) -> None:
    rows = "".join(f"{i},{i}.5\n" for i in range(1000))
    write(root, "big.csv", f"id,amount\n{rows}not a number,x\n")
    connector = Synced(CsvConnector(root, sample_bytes=4096))
    assert types(connector.inspect({"path": "big.csv"})) == {"id": "integer", "amount": "numeric"}
    assert types(Synced(CsvConnector(root)).inspect({"path": "big.csv"})) == {
        "id": "text",
        "amount": "text",
    }


def test_the_record_the_sample_cuts_is_dropped(root: Path) -> None:
    head = "id,day\n1,2024-01-31\n"
    write(root, "quoted.csv", head + '22,"2024-02-01\nstill the same record"\n3,2024-02-02\n')
    inside_quotes = len(head) + len('22,"2024-02-01\nsti')  # kept, "day" would be text
    assert Synced(CsvConnector(root, sample_bytes=inside_quotes)).inspect(
        {"path": "quoted.csv"}
    ) == [
        Column("id", "integer", False),
        Column("day", "date", False),
    ]
    write(root, "plain.csv", head + "2,2024-02-01\n3,2024-02-02\n")
    inside_a_date = len(head) + len("2,2024-02-01\n3,2024-0")  # kept, "day" would be text
    columns = Synced(CsvConnector(root, sample_bytes=inside_a_date)).inspect({"path": "plain.csv"})
    assert types(columns) == {"id": "integer", "day": "date"}


def test_a_character_cut_by_the_sample_keeps_the_encoding(root: Path) -> None:
    content = "café,n\n" + "é" * 10 + ",1\n" + "x,2\n"  # cut in the second row
    data = content.encode("utf-8")
    cut = data.index("é".encode() * 3) + 1  # in the middle of a two-byte character
    write(root, "cut.csv", data)
    assert names(Synced(CsvConnector(root, sample_bytes=cut)).inspect({"path": "cut.csv"})) == [
        "café",
        "n",
    ]


def test_at_most_max_rows_are_read(root: Path) -> None:
    write(root, "rows.csv", "id\n" + "1\n" * 50 + "x\n")
    assert types(Synced(CsvConnector(root, max_rows=50)).inspect({"path": "rows.csv"})) == {
        "id": "integer"
    }
    assert types(Synced(CsvConnector(root, max_rows=51)).inspect({"path": "rows.csv"})) == {
        "id": "text"
    }


def test_a_first_record_longer_than_the_sample_is_unreadable(root: Path) -> None:
    write(root, "wide.csv", ",".join(f"column {i}" for i in range(1000)) + "\n1\n")
    error = unavailable(Synced(CsvConnector(root, sample_bytes=1024)), path="wide.csv")
    assert error.reason == "unreadable"


def test_a_large_file_is_inspected_from_its_sample_only(root: Path) -> None:
    line = "1,2024-01-31T10:00:00Z,hello world\n"
    with (root / "large.csv").open("wb") as file:
        file.write(b"id,at,note\n" + line.encode() * (2 * 1024 * 1024 // len(line)))
        file.write(bytes(range(256)) * 32 * 1024)  # 8 MiB of binary junk past the sample
    columns = Synced(CsvConnector(root)).inspect({"path": "large.csv"})
    assert types(columns) == {"id": "integer", "at": "timestamp with time zone", "note": "text"}


def test_a_stray_quote_costs_the_sample_not_the_answer(root: Path) -> None:
    write(root, "stray.csv", "id,size\n" + "".join(f'{i},5" screen\n' for i in range(100_000)))
    columns = Synced(CsvConnector(root)).inspect({"path": "stray.csv"})
    assert types(columns) == {"id": "integer", "size": "text"}


# --- the inferred types are the ones PostgreSQL takes --------------------------------------


@pytest.fixture(scope="module")
def pg(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


def assert_postgres_takes(pg: psycopg.Connection[Any], value: str, datestyle: str) -> None:
    value = value.strip(BLANKS)
    if "\x00" in value or value.lower() in MISSING:
        return
    inferred = value_type(value).replace("zero or one", "integer")
    pg.execute(sql.SQL("SET DateStyle = {}").format(sql.Literal(datestyle)))
    pg.execute(sql.SQL("SELECT CAST(%s AS {})").format(sql.SQL(inferred)), (value,))


values_of_every_form = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: format(d, "f")),
    st.floats(allow_nan=False).map(repr),
    st.floats(allow_nan=False).map(lambda f: f"{f:E}"),
    st.dates().map(date.isoformat),
    st.dates(min_value=date(1000, 1, 1)).map(lambda d: d.strftime("%Y/%m/%d")),
    st.dates(min_value=date(1000, 1, 1)).map(lambda d: d.strftime("%d %b %Y")),
    st.dates(min_value=date(1000, 1, 1)).map(lambda d: d.strftime("%B %d, %Y")),
    st.times().map(time.isoformat),
    st.datetimes().map(lambda d: d.isoformat(" ")),
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
    st.text(alphabet="0123456789-+.:eE /TZ", max_size=12),
)


@pytest.mark.postgres
@given(values_of_every_form, st.sampled_from(["ISO, MDY", "ISO, DMY", "German, YMD"]))
def test_postgresql_accepts_every_value_as_its_inferred_type(
    pg: psycopg.Connection[Any], value: str, datestyle: str
) -> None:
    assert_postgres_takes(pg, value, datestyle)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "value",
    ["31 Jan 2024", "31-Jan-2024", "Jan 31, 2024", "January 31 2024", "2024/1/5", "9:30",
     "2024-01-31t10:00:00.5", "2024-01-31 10:00:00 UTC", "2024-01-31T10:00:00-0800", "+INF",
     "-Infinity", ".5", "-0", "Y", "off", str(2**63 - 1), "1e-320", "0e0", "23:59:59.999999"],
)  # fmt: skip
def test_postgresql_accepts_the_less_common_forms(pg: psycopg.Connection[Any], value: str) -> None:
    assert value_type(value) != "text"
    for datestyle in ("ISO, MDY", "ISO, DMY"):
        assert_postgres_takes(pg, value, datestyle)


@pytest.mark.parametrize("field", ["path", "delimiter", "encoding"])
def test_a_nul_in_any_field_is_a_400_not_a_crash(tmp_path: Path, field: str) -> None:
    connector = Synced(CsvConnector(tmp_path))
    connection = {"path": "a.csv", field: "a\x00b"}
    with pytest.raises(InvalidConnection) as caught:
        connector.validate(connection)
    assert f"connection.{field}" in {e.field for e in caught.value.errors}
