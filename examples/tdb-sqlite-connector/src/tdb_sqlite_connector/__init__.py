"""An example tdb connector plug-in: a table's columns from an SQLite database file.

It needs nothing of tdb's. tdb constructs `SqliteConnector()` once, reads its `title` and
`fields`, and calls `inspect(connection)` on a thread (it is a blocking function), under
tdb's deadline and bounds. Any exception it raises is a 503 `backend_error`; to give a more
precise reason, it raises tdb's own `BackendUnavailable` when tdb is there to import.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    from domain.errors import BackendUnavailable
except ImportError:  # not beside tdb: plain exceptions, which tdb reports as `backend_error`
    BackendUnavailable = None


def _unavailable(reason: str, detail: str, fallback: type[Exception]) -> Exception:
    if BackendUnavailable is None:
        return fallback(detail)
    return BackendUnavailable(reason, detail)


@dataclass(frozen=True)
class Field:
    """A connection field, declared as tdb reads one (attributes; a dict would do as well)."""

    name: str
    type: str
    description: str = ""
    required: bool = False
    default: Any = None
    secret: bool = False


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool


class SqliteConnector:
    """The columns of a table or view in an SQLite file, opened read-only."""

    title = "SQLite table"
    fields = (
        Field("database", "string", "Path of the SQLite database file", required=True),
        Field("table", "string", "The table or view", required=True),
        Field("timeout", "number", "Seconds to wait for a locked database", default=2.0),
    )

    def inspect(self, connection: dict[str, Any]) -> list[Column]:
        path = Path(connection["database"])
        if not path.is_file():
            raise _unavailable("file_not_found", "no such database file", FileNotFoundError)
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=connection["timeout"]) as db:
            rows = db.execute(
                'SELECT name, type, "notnull" FROM pragma_table_info(?)', (connection["table"],)
            ).fetchall()
        if not rows:
            table = connection["table"]
            raise _unavailable("table_not_found", f"no table {table!r}", LookupError)
        return [Column(name, (kind or "blob").lower(), not notnull) for name, kind, notnull in rows]
