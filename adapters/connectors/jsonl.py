"""The JSON lines connector: one JSON object per line, columns typed from the first lines."""

from __future__ import annotations

import codecs
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import anyio.to_thread

from adapters.connectors.csv import MAX_ROWS, PATH_DESCRIPTION, SAMPLE_BYTES, WORKERS
from adapters.connectors.csv_inference import (
    INT32,
    INT64,
    TYPE_RULES,
    is_date,
    is_time,
    join,
    timestamp_type,
)
from adapters.connectors.deadline import Deadline
from adapters.connectors.files import FilesRoot
from domain.connections import ConnectionField, check_connection
from domain.errors import BackendUnavailable
from domain.sources import MAX_COLUMNS, Column

# Lines parsed between two looks at the deadline.
_CHECK_EVERY = 256
JSONB = "jsonb"


def value_type(value: Any) -> str | None:
    """The type of one JSON value in the CSV connector's vocabulary; None for null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        if INT32[0] <= value <= INT32[1]:
            return "integer"
        return "bigint" if INT64[0] <= value <= INT64[1] else "numeric"
    if isinstance(value, float):
        return "double precision"
    if isinstance(value, str):
        if is_date(value):
            return "date"
        if is_time(value):
            return "time without time zone"
        return timestamp_type(value) or "text"
    return JSONB  # an object or an array


# The types a JSON string may have, and what each accepts: a string of the type a key holds
# already changes nothing, and is recognised with one check.
_STRING_TYPES = {
    name: accepts
    for name, accepts in TYPE_RULES
    if name
    in (
        "date",
        "time without time zone",
        "timestamp without time zone",
        "timestamp with time zone",
        "text",
    )
}


def widened(known: str, value: Any) -> str:
    """The type of a key that held values of type `known`, once it also holds `value` (not
    null): the same type, most of the time, found with one check."""
    if known == JSONB:
        return JSONB
    if isinstance(value, str):
        accepts = _STRING_TYPES.get(known)
        if accepts is not None and accepts(value):
            return known
    return joined(known, value_type(value) or known)


# The JSON kind of each type: values of one kind widen as CSV columns do, values of two kinds
# (a number here, a string there) are JSON values of no one SQL type.
_KIND = {
    "integer": "number",
    "bigint": "number",
    "numeric": "number",
    "double precision": "number",
    "boolean": "boolean",
    **dict.fromkeys(_STRING_TYPES, "string"),
}


def joined(a: str, b: str) -> str:
    """The type of a key that holds values of types `a` and `b`: within one JSON kind (numbers,
    strings), the CSV connector's widening; across kinds, or with an object or an array, a JSON
    value (`jsonb`)."""
    if a == b:
        return a
    if JSONB in (a, b) or _KIND[a] != _KIND[b]:
        return JSONB
    return join(a, b)


class JsonLinesConnector:
    """Reads the keys of a newline-delimited JSON file under the files root, typed from data.

    The file is opened once through `FilesRoot` (the CSV connector's sandbox). Inspection reads
    at most `sample_bytes` (1 MiB) from its start, and at most `max_rows` (10 000) lines; a
    sample cut short ends at its last whole line. Blank lines are skipped. Each line must be a
    JSON object (UTF-8, RFC 8259), else the answer is `unreadable` naming the line's number.
    Columns: the keys in the order first seen. Types: JSON true/false `boolean`; integers
    `integer`, `bigint` or `numeric` by size; a number with a fraction or exponent `double
    precision`; a string `text`, unless every value is an ISO date, time or timestamp (then
    `date`, `time without time zone`, `timestamp [with|without] time zone`); objects and arrays
    `jsonb`. Values of one JSON kind widen as CSV columns do (`integer` and `double precision`
    give `double precision`, a date and a timestamp a timestamp, other strings `text`); values
    of several kinds (a number and a string, say), or an object or array among them, `jsonb`.
    A key missing from some line, or null in one, is nullable; a key only ever null is `text`,
    nullable. The work runs in the CSV connector's worker processes, within `timeout`.
    """

    source_type = "jsonl"
    title = "JSON lines file"
    origin = "builtin"
    package: str | None = None
    fields: Sequence[ConnectionField] = (
        ConnectionField("path", required=True, description=PATH_DESCRIPTION),
    )

    def __init__(
        self,
        root: Path | str,
        sample_bytes: int = SAMPLE_BYTES,
        max_rows: int = MAX_ROWS,
        timeout: float = 5.0,
        store_files: Iterable[Path | str] = (),
        max_columns: int = MAX_COLUMNS,
    ) -> None:
        self._files = FilesRoot(root, store_files)
        self._sample_bytes = sample_bytes
        self._max_rows = max_rows
        self._timeout = timeout
        self._max_columns = max_columns

    async def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        return await self._files.validated(self.fields, connection)

    async def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        connection = check_connection(self.fields, connection)
        return await anyio.to_thread.run_sync(
            WORKERS.call,
            functools.partial(self._inspect, connection["path"]),
            self._timeout,
            f"reading {connection['path']!r}",
            abandon_on_cancel=True,
        )

    async def check(self, connection: Mapping[str, Any]) -> None:
        await self.inspect(connection)

    async def forget(self, connection: Mapping[str, Any]) -> None:
        """Nothing to drop: the file is opened afresh at every inspection."""

    def _inspect(self, path: str, deadline: Deadline) -> list[Column]:
        data, complete = self._files.read_head(path, self._sample_bytes)
        if not data:
            raise BackendUnavailable("empty_file", f"{path!r} is empty")
        if not complete:
            end = data.rfind(b"\n")
            if end < 0:
                raise BackendUnavailable(
                    "unreadable",
                    f"{path!r}: line 1 is longer than the {self._sample_bytes} bytes read",
                )
            data = data[: end + 1]
        lines = list(islice(_lines(data, path), self._max_rows))
        return self._columns(_records(lines, path), path, deadline)

    def _columns(
        self, lines: Iterable[dict[str, Any]], path: str, deadline: Deadline
    ) -> list[Column]:
        types: dict[str, str | None] = {}
        nullable: dict[str, bool] = {}
        records = 0
        for record in lines:
            for key in types.keys() - record.keys():
                nullable[key] = True
            for key, value in record.items():
                if key not in types:
                    found = value_type(value)
                    if len(types) == self._max_columns:
                        raise BackendUnavailable(
                            "too_many_columns",
                            f"{path!r} has more than {self._max_columns} keys; at most"
                            f" {self._max_columns} columns are read (PostgreSQL's limit)",
                        )
                    types[key], nullable[key] = found, records > 0
                elif value is not None:
                    known = types[key]
                    types[key] = value_type(value) if known is None else widened(known, value)
                if value is None:
                    nullable[key] = True
            records += 1
            if records == self._max_rows:
                break
            if records % _CHECK_EVERY == 0:
                deadline.check()
        if not records:
            raise BackendUnavailable("empty_file", f"{path!r} holds no JSON lines")
        return [Column(key, found or "text", nullable[key]) for key, found in types.items()]


def _lines(data: bytes, path: str) -> Iterable[tuple[int, str]]:
    """The non-blank lines of the sample, numbered from 1, as text."""
    text = _decoded(data, path)
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield number, line


def _decoded(data: bytes, path: str) -> str:
    try:
        return data.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BackendUnavailable(
            "unreadable", f"{path!r}: line {line} is not UTF-8 (byte 0x{data[exc.start]:02x})"
        ) from None


def _records(lines: list[tuple[int, str]], path: str) -> list[dict[str, Any]]:
    """The lines' JSON objects; `unreadable` naming the first line that is not one.

    Parsed as one JSON array first (one call into the C parser); only if that fails, or gives
    other than one object per line, line by line, to name the line."""
    try:
        parsed = json.loads("[" + ",".join(line for _, line in lines) + "]")
    except (json.JSONDecodeError, RecursionError):
        parsed = None
    if (
        isinstance(parsed, list)
        and len(parsed) == len(lines)
        and all(isinstance(item, dict) for item in parsed)
    ):
        return parsed
    return [_record(line, number, path) for number, line in lines]


def _record(line: str, number: int, path: str) -> dict[str, Any]:
    """The line's JSON object; `unreadable` naming the line if it is not one."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BackendUnavailable(
            "unreadable",
            f"{path!r}: line {number} is not valid JSON ({exc.msg}, column {exc.colno})",
        ) from None
    except RecursionError:
        raise BackendUnavailable(
            "unreadable", f"{path!r}: line {number} nests JSON values too deeply"
        ) from None
    if not isinstance(value, dict):
        raise BackendUnavailable(
            "unreadable", f"{path!r}: line {number} is not a JSON object but {_kind(value)}"
        )
    return value


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "a number"
