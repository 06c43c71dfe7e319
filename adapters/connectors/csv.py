"""The CSV connector: files under one root directory, dialect detected, columns typed from data."""

from __future__ import annotations

import codecs
import csv
import encodings.aliases
import functools
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice, zip_longest
from pathlib import Path
from typing import Any

import anyio.to_thread

from adapters.connectors.csv_inference import column_type
from adapters.connectors.deadline import Deadline
from adapters.connectors.files import FilesRoot
from adapters.connectors.workers import WorkerProcesses
from domain.connections import ConnectionField, check_connection
from domain.errors import BackendUnavailable, FieldError, InvalidConnection
from domain.sources import MAX_COLUMNS, Column

SAMPLE_BYTES = 1024 * 1024
PATH_DESCRIPTION = "The file, relative to the files root (TDB_FILES_ROOT)"
MAX_ROWS = 10_000
# Rows times columns typed at most: a wide file is typed from fewer rows, so that the work (and
# the memory) of one inspection stays bounded whatever the shape of the sample.
MAX_CELLS = 1_000_000
# Records parsed between two looks at the deadline.
_CHECK_EVERY = 256
# Inspections that run at once per server process, whatever the number of connectors, each in a
# worker process: the work is CPU-bound, and in the server's own process it would hold the GIL
# against every other request.
PARALLEL = 2
WORKERS = WorkerProcesses(PARALLEL)
DELIMITERS = (",", ";", "\t", "|")
# Enough records to tell the delimiter; the rest of the sample only refines types.
DELIMITER_PROBE_CHARS = 64 * 1024
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Windows-1252 before ISO-8859-1, as the WHATWG encoding standard reads "latin1": real files
# labelled Latin-1 use its extra letters (€, curly quotes); Latin-1 still takes any byte.
FALLBACK_ENCODINGS = ("utf-8", "cp1252", "latin-1")
# Text has almost no control characters; decoded binary data has them in every other line.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# The same characters in ASCII, for a faster count with bytes.translate.
_ASCII_NOT_CONTROL = bytes(b for b in range(128) if not _CONTROL.match(chr(b)))
MAX_CONTROL_SHARE = 0.05


def unique_names(header: Sequence[str], width: int) -> list[str]:
    """Column names: stripped header names, a blank one as `column_<position>`, a repeated one as
    `<name>_2`, `<name>_3`, ... skipping any name the header itself uses; past the header's end,
    `column_<position>`. Without a header, pass `()`: `column_1` ... `column_<width>`.
    """
    given = [name.strip() for name in header] + [""] * (width - len(header))
    reserved = {name for name in given if name}
    used: set[str] = set()
    names = []
    for position, name in enumerate(given, 1):
        base = name or f"column_{position}"
        candidate, suffix = base, 2
        while candidate in used or (candidate in reserved and candidate != name):
            candidate, suffix = f"{base}_{suffix}", suffix + 1
        used.add(candidate)
        names.append(candidate)
    return names


def detect_delimiter(text: str, complete: bool) -> str:
    """The candidate that splits the first records into the most consistent number (>= 2) of
    fields; ties go to more fields, then to the order of `DELIMITERS`; `,` if none splits.
    """
    probe = text[:DELIMITER_PROBE_CHARS]
    if not complete or len(text) > DELIMITER_PROBE_CHARS:
        probe = through_last_whole_record(probe) or probe
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        reader = csv.reader(io.StringIO(probe, newline=""), delimiter=delimiter)
        widths = [len(record) for record in reader if record]
        if not widths:
            continue
        width, count = Counter(widths).most_common(1)[0]
        score = (count / len(widths), width)
        if width >= 2 and score > best_score:
            best, best_score = delimiter, score
    return best


class CsvConnector:
    """Reads the header and infers the column types of a CSV file under `root` (TDB_FILES_ROOT).

    Paths. `connection.path` is relative to the root; an absolute path, a `..` part, a path that
    resolves (through symlinks) outside the root or to the root itself is refused at
    registration (`InvalidConnection` on `connection.path`). The file need not exist yet: it may
    arrive later, and inspection says `file_not_found` until it does. Inspection checks again,
    before opening and then on the opened file itself (a symlink may have been swapped since):
    outside the root is `permission_denied`, like a file the service may not read. A hard link
    is a second name for a file that may live anywhere, and nothing tells where the other name
    is: a file with more than one link is `permission_denied` too. The registry's own files
    (`store_files`: the SQLite database, its journal and its key file) are never read, under any
    name: refused at registration, `permission_denied` at inspection.

    Sample. Inspection reads at most `sample_bytes` (1 MiB) from the start of the file and at
    most `max_rows` records after the header. When the file goes on past the sample, the sample
    ends at its last whole record: its last line end outside quotes (and a multi-byte character
    cut in two is left out). Time and memory are therefore bounded whatever the file's size, and
    types and nullability reflect the sample only.

    Dialect. Encoding, when not given: a BOM (UTF-8, UTF-16, UTF-32), else UTF-8, else
    Windows-1252, else Latin-1. Delimiter, when not given: `,` `;` tab or `|`, see
    `detect_delimiter`. Quoting is RFC 4180 (`"`, doubled inside quotes; quoted fields may hold
    delimiters and newlines); LF, CRLF and CR line ends; blank lines are skipped. A row shorter
    than the widest record leaves nulls; the widest record sets the number of columns.

    Names. With `header` (default true) the first record names the columns, see `unique_names`;
    without it they are `column_1` ... `column_n`.

    Answers. An empty file (or blank lines only) is `empty_file`: there is no header to read.
    A header with no rows gives its columns as `text`, nullable (no evidence of anything
    narrower). Types follow `csv_inference`, from at most `max_cells` cells (rows times columns:
    a wide file is typed from its first `max_cells // width` rows). A record of more than
    `max_columns` (1600, PostgreSQL's limit) fields is `too_many_columns`: no answer rather than
    a truncated one. Failures: `file_not_found` (no such file),
    `permission_denied` (outside the root, or not readable by the service), `unreadable` (not a
    regular file, binary data, not decodable in the given encoding, a record longer than the
    sample), `timeout` (the file system, or the inference, did not finish within `timeout`: the
    work runs in a worker process, checks its deadline as it goes, and a worker still busy when
    it passes is killed).
    """

    source_type = "csv"
    title = "CSV file"
    origin = "builtin"
    package: str | None = None
    fields: Sequence[ConnectionField] = (
        ConnectionField("path", required=True, description=PATH_DESCRIPTION),
        ConnectionField(
            "delimiter", description="The field separator; detected from the file when not given"
        ),
        ConnectionField(
            "encoding", description="The text encoding; detected from the file when not given"
        ),
        ConnectionField(
            "header", type=bool, default=True, description="Whether the first record names columns"
        ),
    )

    def __init__(
        self,
        root: Path | str,
        sample_bytes: int = SAMPLE_BYTES,
        max_rows: int = MAX_ROWS,
        timeout: float = 5.0,
        max_columns: int = MAX_COLUMNS,
        max_cells: int = MAX_CELLS,
        store_files: Iterable[Path | str] = (),
    ) -> None:
        self._files = FilesRoot(root, store_files)
        self._sample_bytes = sample_bytes
        self._max_rows = max_rows
        self._timeout = timeout
        self._max_columns = max_columns
        self._max_cells = max_cells
        # The csv module caps a field at 128 KiB by default (a process-wide setting); a long
        # field that fits in the sample is data, not an error.
        csv.field_size_limit(max(csv.field_size_limit(), sample_bytes))

    async def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        # The path's checks look at the file system, which may be slow to answer.
        return await anyio.to_thread.run_sync(self._validate, connection, abandon_on_cancel=True)

    def _validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        errors: list[FieldError] = []
        try:
            checked = check_connection(self.fields, connection)
        except InvalidConnection as exc:
            errors.extend(exc.errors)
            checked = dict(connection) if isinstance(connection, Mapping) else {}
        # A field that broke a declared rule (a NUL in the path, say) is not looked at further.
        already = {error.field for error in errors}
        valid = {k: v for k, v in checked.items() if f"connection.{k}" not in already}
        errors.extend(self._field_errors(valid))
        if errors:
            raise InvalidConnection(errors)
        return checked

    def _field_errors(self, connection: Mapping[str, Any]) -> list[FieldError]:
        errors = []
        path, delimiter, encoding = (connection.get(k) for k in ("path", "delimiter", "encoding"))
        if isinstance(path, str) and path and (problem := self._path_problem(path)):
            errors.append(FieldError("connection.path", problem))
        if isinstance(delimiter, str) and (len(delimiter) != 1 or delimiter in '"\r\n'):
            errors.append(
                FieldError("connection.delimiter", "must be one character, not a quote or newline")
            )
        if isinstance(encoding, str) and encoding and not _is_text_encoding(encoding):
            errors.append(FieldError("connection.encoding", "is not a known text encoding"))
        return errors

    def _path_problem(self, path: str) -> str | None:
        """Why this path may not be read, or None."""
        return self._files.path_problem(path)

    async def check(self, connection: Mapping[str, Any]) -> None:
        # The schema would answer now exactly when an inspection succeeds.
        await self.inspect(connection)

    async def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        # The path is checked again when the file is opened; here only the defaults are filled.
        connection = check_connection(self.fields, connection)
        # The work runs in a worker process; waiting for it blocks, so a thread waits. Waiting
        # for a worker counts against the deadline, like the work itself.
        return await anyio.to_thread.run_sync(
            WORKERS.call,
            functools.partial(self._inspect, connection),
            self._timeout,
            f"reading {connection['path']!r}",
            abandon_on_cancel=True,
        )

    async def forget(self, connection: Mapping[str, Any]) -> None:
        """Nothing to drop: a CSV file is opened afresh at every inspection."""

    def _inspect(self, connection: Mapping[str, Any], deadline: Deadline) -> list[Column]:
        # Here too: this runs in a worker process, which did not run __init__.
        csv.field_size_limit(max(csv.field_size_limit(), self._sample_bytes))
        path = connection["path"]
        data, complete = self._read_sample(path)
        text = _decode(data, complete, connection.get("encoding"), path)
        delimiter = connection.get("delimiter") or detect_delimiter(text, complete)
        limit = self._max_rows + (1 if connection["header"] else 0)
        records = _records(text, delimiter, complete, limit, path, self._max_columns, deadline)
        width = max(len(record) for record in records)
        if connection["header"]:
            names, rows = unique_names(records[0], width), records[1:]
        else:
            names, rows = unique_names((), width), records
        rows = rows[: max(1, self._max_cells // width)]
        cells: list[tuple[str | None, ...]] = list(zip_longest(*rows))
        cells += [()] * (width - len(cells))
        columns = []
        for name, column in zip(names, cells, strict=True):
            deadline.check()
            columns.append(Column(name, *column_type(column)))
        return columns

    def _read_sample(self, path: str) -> tuple[bytes, bool]:
        """The first bytes of the file, and whether they are the whole file."""
        data, complete = self._files.read_head(path, self._sample_bytes)
        if not data:
            raise BackendUnavailable("empty_file", f"{path!r} is empty")
        return data, complete


def _character_sets() -> frozenset[str]:
    """Python's character-set codecs, by canonical name: the ones with aliases (every common
    charset has one) and a few code pages without, less the codecs that are not a character
    set (bytes-to-bytes codecs such as base64, rot13) and UTF-7, whose `+...-` escapes decode
    to characters that were not written as such.
    """
    names = set(encodings.aliases.aliases.values())
    names |= {"utf_8_sig", "koi8_u", "koi8_t", "cp720", "cp737", "cp856", "cp874", "cp875"}
    found = set()
    for name in names - {"utf_7"}:
        try:
            info = codecs.lookup(name)
        except LookupError:  # mbcs, outside Windows
            continue
        if getattr(info, "_is_text_encoding", True):
            found.add(info.name)
    return frozenset(found)


# Not "any codec Python has": `undefined` fails on every byte, `idna` and `punycode` encode host
# names, `unicode_escape` reads backslashes as escapes.
CHARACTER_SETS = _character_sets()


def _is_text_encoding(name: str) -> bool:
    try:
        return codecs.lookup(name).name in CHARACTER_SETS
    except LookupError:
        return False


def _decode(data: bytes, complete: bool, encoding: str | None, path: str) -> str:
    """The sample as text; `complete` false keeps a multi-byte character cut at the end out."""
    boms = [name for bom, name in BOMS if data.startswith(bom)]
    candidates = (encoding,) if encoding else tuple(boms[:1]) or FALLBACK_ENCODINGS
    for name in candidates:
        try:
            text = codecs.getincrementaldecoder(name)().decode(data, final=complete)
            break
        # Not only UnicodeDecodeError: UTF-16 and UTF-32 without a BOM raise a bare UnicodeError.
        except UnicodeError as exc:
            failure = exc
    else:
        if isinstance(failure, UnicodeDecodeError):
            where = f"byte 0x{data[failure.start]:02x} at offset {failure.start}"
            raise BackendUnavailable(
                "unreadable", f"{path!r} is not valid {failure.encoding}: {where}"
            )
        raise BackendUnavailable("unreadable", f"{path!r} is not valid {name}: {failure}")
    text = text.removeprefix("\ufeff")
    if "\x00" in text or _controls(text) > MAX_CONTROL_SHARE * len(text):
        raise BackendUnavailable("unreadable", f"{path!r} holds binary data, not text")
    return text


def _controls(text: str) -> int:
    """How many control characters the text holds."""
    if text.isascii():
        return len(text.encode("ascii").translate(None, _ASCII_NOT_CONTROL))
    return len(_CONTROL.findall(text))


def through_last_whole_record(text: str) -> str:
    """The text up to its last line end outside quotes, where a cut sample's whole records end.

    Quotes are counted, not parsed: a line end is outside quotes when the quotes before it are
    balanced, as RFC 4180 quoting keeps them (a quote inside a quoted field is doubled).
    """
    quotes, end = text.count('"'), len(text)
    # Each search resumes where the last one stopped: one backward pass, even when a stray
    # quote leaves every line end "inside quotes".
    newline, carriage_return = text.rfind("\n"), text.rfind("\r")
    while (line_end := max(newline, carriage_return)) >= 0:
        quotes -= text.count('"', line_end, end)
        if quotes % 2 == 0:
            return text[: line_end + 1]
        end = line_end
        if newline == line_end:
            newline = text.rfind("\n", 0, line_end)
        else:
            carriage_return = text.rfind("\r", 0, line_end)
    return ""


def _too_many_columns(path: str, fields: int, max_columns: int) -> BackendUnavailable:
    return BackendUnavailable(
        "too_many_columns",
        f"{path!r} has a record of {fields} fields; at most {max_columns} columns are read "
        "(PostgreSQL's limit)",
    )


def _width_guard(
    lines: Iterable[str], delimiter: str, max_columns: int, path: str
) -> Iterator[str]:
    """The lines, stopping at one that is certainly a record too wide, before the csv module
    splits it (half a million fields cost a list of half a million strings). A line with quotes
    may hold delimiters inside a field: the csv module counts its fields instead."""
    for line in lines:
        if (count := line.count(delimiter)) >= max_columns and '"' not in line:
            raise _too_many_columns(path, count + 1, max_columns)
        yield line


def _records(
    text: str,
    delimiter: str,
    complete: bool,
    limit: int,
    path: str,
    max_columns: int,
    deadline: Deadline,
) -> list[list[str]]:
    """Up to `limit` whole, non-blank records; `too_many_columns` at the first wider than
    `max_columns`."""
    if not complete:
        text = through_last_whole_record(text)
    lines = _width_guard(io.StringIO(text, newline=""), delimiter, max_columns, path)
    reader = csv.reader(lines, delimiter=delimiter)
    records = []
    try:
        for record in islice((r for r in reader if r), limit):
            if len(record) > max_columns:
                raise _too_many_columns(path, len(record), max_columns)
            records.append(record)
            if len(records) % _CHECK_EVERY == 0:
                deadline.check()
    except csv.Error as exc:
        raise BackendUnavailable("unreadable", f"{path!r}: {exc}") from None
    if records:
        return records
    if complete:
        raise BackendUnavailable("empty_file", f"{path!r} holds no records")
    raise BackendUnavailable("unreadable", f"{path!r}: its first record is longer than the sample")
