"""The Parquet connector: a file's columns from its footer alone, no row read."""

from __future__ import annotations

import asyncio
import functools
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from adapters.connectors.csv import PATH_DESCRIPTION
from adapters.connectors.files import FilesRoot
from domain.connections import ConnectionField, check_connection
from domain.errors import BackendUnavailable
from domain.sources import MAX_COLUMNS, Column

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported at the first inspection, not with the server: it costs every process
# (each worker, each CLI command) most of a second and some 40 MB, and few servers read Parquet.

MAGIC = b"PAR1"
# The footer's length and the magic number end every Parquet file.
TAIL = 8
# A footer larger than this is refused unread: real files' footers hold kilobytes per column
# and row group; a bigger one is a file that is not what it says, or one made to cost memory.
MAX_FOOTER_BYTES = 16 * 1024 * 1024


def postgres_type(arrow: pa.DataType) -> str:
    """The PostgreSQL name for an Arrow type, as the files connectors report types."""
    import pyarrow.types as pat

    if pat.is_dictionary(arrow):
        return postgres_type(arrow.value_type)
    for test, name in _type_tests():
        if test(arrow):
            return name
    if pat.is_timestamp(arrow):
        zoned = arrow.tz is not None
        return "timestamp with time zone" if zoned else "timestamp without time zone"
    if pat.is_duration(arrow) or pat.is_interval(arrow):
        return "interval"
    return "text"  # a null column: no evidence of anything narrower


@functools.cache
def _type_tests() -> tuple[tuple[Any, str], ...]:
    """Arrow type tests and the type each gives, narrowest first."""
    import pyarrow.types as pat

    return (
        (lambda t: pat.is_int8(t) or pat.is_int16(t) or pat.is_uint8(t), "smallint"),
        (lambda t: pat.is_int32(t) or pat.is_uint16(t), "integer"),
        (lambda t: pat.is_int64(t) or pat.is_uint32(t), "bigint"),
        (lambda t: pat.is_uint64(t) or pat.is_decimal(t), "numeric"),
        (lambda t: pat.is_float16(t) or pat.is_float32(t), "real"),
        (pat.is_float64, "double precision"),
        (pat.is_boolean, "boolean"),
        (lambda t: pat.is_string(t) or pat.is_large_string(t) or pat.is_string_view(t), "text"),
        (
            lambda t: (
                pat.is_binary(t)
                or pat.is_large_binary(t)
                or pat.is_fixed_size_binary(t)
                or pat.is_binary_view(t)
            ),
            "bytea",
        ),
        (pat.is_date, "date"),
        (pat.is_time, "time without time zone"),
        (pat.is_nested, "jsonb"),  # lists, structs, maps, unions
    )


class ParquetConnector:
    """Reads a Parquet file's column names, types and nullability from its footer.

    The file is a `path` under the files root, opened once through `FilesRoot` (its sandbox: no
    symlink or hard link out of the root, no registry file). Only the file's last bytes are read
    (from the open file, with `pread`): the 8 that give the footer's length, then the footer
    itself (at most `MAX_FOOTER_BYTES`), which pyarrow parses; no row group is touched, so time
    and memory do not grow with the file. Types: see `postgres_type`; `nullable` is the field's
    own (a `required` column is not null). Failures: `file_not_found`, `permission_denied`,
    `empty_file`, `unreadable` (not a Parquet file, or a footer pyarrow cannot read),
    `too_many_columns` (more than 1600), `timeout` (the file system did not answer within
    `timeout`).
    """

    source_type = "parquet"
    title = "Parquet file"
    origin = "builtin"
    package: str | None = None
    fields: Sequence[ConnectionField] = (
        ConnectionField("path", required=True, description=PATH_DESCRIPTION),
    )

    def __init__(
        self,
        root: Path | str,
        timeout: float = 5.0,
        store_files: Iterable[Path | str] = (),
        max_columns: int = MAX_COLUMNS,
    ) -> None:
        self._files = FilesRoot(root, store_files)
        self._timeout = timeout
        self._max_columns = max_columns

    async def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        return await self._files.validated(self.fields, connection)

    async def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        connection = check_connection(self.fields, connection)
        path = connection["path"]
        try:
            async with asyncio.timeout(self._timeout):
                return await anyio.to_thread.run_sync(self._columns, path, abandon_on_cancel=True)
        except TimeoutError:
            raise BackendUnavailable(
                "timeout", f"reading {path!r} gave no answer within {self._timeout:g} s"
            ) from None

    async def check(self, connection: Mapping[str, Any]) -> None:
        await self.inspect(connection)

    async def forget(self, connection: Mapping[str, Any]) -> None:
        """Nothing to drop: the file is opened afresh at every inspection."""

    def _columns(self, path: str) -> list[Column]:
        fd, status = self._files.open(path)
        try:
            schema = _footer_schema(fd, status.st_size, path)
        finally:
            os.close(fd)
        if len(schema) > self._max_columns:
            raise BackendUnavailable(
                "too_many_columns",
                f"{path!r} has {len(schema)} columns; at most {self._max_columns} are read",
            )
        return [Column(f.name, postgres_type(f.type), f.nullable) for f in schema]


def _footer_schema(fd: int, size: int, path: str) -> pa.Schema:
    """The Arrow schema in the footer of the open Parquet file: its last 8 bytes give the
    footer's length, checked before the footer (and nothing else) is read, and parsed."""
    if size == 0:
        raise BackendUnavailable("empty_file", f"{path!r} is empty")
    not_parquet = f"{path!r} is not a Parquet file"
    if size < len(MAGIC) + TAIL:
        raise BackendUnavailable("unreadable", f"{not_parquet}: it is only {size} bytes long")
    try:
        head, tail = os.pread(fd, len(MAGIC), 0), os.pread(fd, TAIL, size - TAIL)
    except OSError as exc:
        raise BackendUnavailable("unreadable", f"{path!r}: {exc.strerror}") from None
    if head != MAGIC or tail[4:] != MAGIC:
        raise BackendUnavailable(
            "unreadable", f"{not_parquet}: it neither starts nor ends with the bytes PAR1"
        )
    (length,) = struct.unpack("<I", tail[:4])
    if length > min(MAX_FOOTER_BYTES, size - len(MAGIC) - TAIL):
        raise BackendUnavailable(
            "unreadable",
            f"{not_parquet}: its footer claims {length} bytes, more than the file holds or than"
            f" tdb reads ({MAX_FOOTER_BYTES} at most)",
        )
    try:
        footer = os.pread(fd, length, size - TAIL - length)
    except OSError as exc:
        raise BackendUnavailable("unreadable", f"{path!r}: {exc.strerror}") from None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # The footer alone, framed as a file: pyarrow reads its metadata and nothing else.
        return pq.ParquetFile(pa.BufferReader(MAGIC + footer + tail)).schema_arrow
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BackendUnavailable(
            "unreadable", f"{not_parquet}: its footer cannot be read ({type(exc).__name__})"
        ) from None
