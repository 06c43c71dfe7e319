"""A fake PostgreSQL server on loopback: just enough of the v3 wire protocol to play a hostile
or odd backend to the connector.

It answers an SSL (or GSS) request with `N`, reads the startup message, then authenticates as
`auth` says (`trust`, or `cleartext`: it asks for the password in clear and records every
`PasswordMessage` it gets, then lets the client in). It may instead end the startup with a
FATAL `ErrorResponse` (`startup_error`). Queries, simple or extended, are answered from a small
catalog: a query on `information_schema.columns` (or on `pg_attribute` for the columns) gets
`columns()` as rows, streamed lazily in batches so that a huge count costs the server nothing;
a lookup in `pg_class` finds a table (`relkind` 'r') with as many columns as `column_count`; a
lookup in `pg_namespace` finds the schema. A statement prepared by name (Parse) is answered
each time it is bound, as a real server's is. With `query_error` set, every query gets that
`ErrorResponse` instead (when it is parsed, or bound if it was prepared before); with
`stall_after`, a columns answer stops after that many rows and the server waits for the client
to leave. A cancel request is counted, and held open unanswered.

Start it with `FakePostgres.start()` (it listens on 127.0.0.5, or 127.0.0.1 where that cannot be
bound, on a free port); `stop()` closes its listener and every connection, and joins its threads.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

# Type OIDs a RowDescription names (domains are sent as their base type, as PostgreSQL does).
NAME_OID = 19
TEXT_OID = 25
VARCHAR_OID = 1043
CHAR_OID = 18
INT8_OID = 20
INT4_OID = 23

ROWS_PER_WRITE = 500

Row = tuple[bytes | str | int | None, ...]


def _cstring(text: bytes | str) -> bytes:
    return (text.encode() if isinstance(text, str) else text) + b"\0"


def _message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def _value(value: bytes | str | int | None) -> bytes:
    if value is None:
        return struct.pack("!i", -1)
    data = value if isinstance(value, bytes) else str(value).encode()
    return struct.pack("!i", len(data)) + data


def data_row(row: Row) -> bytes:
    return _message(b"D", struct.pack("!h", len(row)) + b"".join(_value(v) for v in row))


def row_description(columns: Iterable[tuple[str, int]]) -> bytes:
    fields = list(columns)
    payload = struct.pack("!h", len(fields))
    for name, oid in fields:
        # table oid, attnum, type oid, type size, type modifier, format (text)
        payload += _cstring(name) + struct.pack("!ihihih", 0, 0, oid, -1, -1, 0)
    return _message(b"T", payload)


def error_response(sqlstate: str, message: str, severity: str = "ERROR") -> bytes:
    fields = {b"S": severity, b"V": severity, b"C": sqlstate, b"M": message}
    return _message(b"E", b"".join(k + _cstring(v) for k, v in fields.items()) + b"\0")


def ready() -> bytes:
    return _message(b"Z", b"I")


@dataclass
class _Result:
    """What one query answers: a row description and rows, or an error."""

    description: bytes | None = None
    rows: Iterable[Row] = ()
    error: bytes | None = None


class _Closed(Exception):
    """The client went away."""


@dataclass
class FakePostgres:
    """A fake PostgreSQL server; set its behaviour before the client connects."""

    auth: Literal["trust", "cleartext"] = "trust"
    # (SQLSTATE, message) of a FATAL error that ends the startup instead of letting the client in.
    startup_error: tuple[str, str] | None = None
    # (SQLSTATE, message) of the error every query gets.
    query_error: tuple[str, str] | None = None
    # The rows (column_name, data_type, is_nullable) a columns query answers, made lazily.
    columns: Callable[[], Iterable[Row]] = lambda: [("id", "integer", "NO")]
    column_count: int = 1
    # After this many rows of a columns answer, send nothing more (until the client leaves).
    stall_after: int | None = None

    host: str = ""
    port: int = 0
    # What clients sent: every password (in clear), every startup message's parameters, every
    # query text.
    passwords: list[bytes] = field(default_factory=list)
    startups: list[dict[str, str]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    # Rows sent per answered columns query, and whether the client left before all were sent.
    rows_sent: list[int] = field(default_factory=list)
    cut_short: int = 0
    # Cancel requests received; each is held open, unanswered, until the client leaves.
    cancels: int = 0

    _listener: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _clients: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> FakePostgres:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.5", 0))
        except OSError:
            listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.host, self.port = listener.getsockname()[:2]
        self._listener = listener
        accepting = threading.Thread(target=self._accept, name="fake-postgres", daemon=True)
        accepting.start()
        self._threads.append(accepting)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(5)

    def idle(self) -> None:
        """Wait until every client connection has ended (a client that left, or `stop`)."""
        with self._lock:
            serving = [t for t in self._threads if t.name == "fake-postgres-client"]
        for thread in serving:
            thread.join(5)

    def connection(self, **fields: object) -> dict[str, object]:
        """Connection fields of a postgres source at this server."""
        return {
            "host": self.host,
            "port": self.port,
            "dbname": "fake",
            "user": "reader",
            "table": "wide",
            **fields,
        }

    # --- the server ------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._stopping.is_set():
                    client.close()
                    return
                self._clients.append(client)
                serving = threading.Thread(
                    target=self._serve, args=(client,), name="fake-postgres-client", daemon=True
                )
                self._threads.append(serving)
            serving.start()

    def _serve(self, client: socket.socket) -> None:
        try:
            with client:
                self._session(_Wire(client))
        except (_Closed, OSError):
            pass
        finally:
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)

    def _session(self, wire: _Wire) -> None:
        while True:
            (length,) = struct.unpack("!i", wire.read(4))
            body = wire.read(length - 4)
            (code,) = struct.unpack("!i", body[:4])
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                wire.send(b"N")
                continue
            if code == CANCEL_REQUEST:
                with self._lock:
                    self.cancels += 1
                wire.until_closed()
                return
            break
        parts = body[4:].split(b"\0")
        self.startups.append(
            {
                parts[i].decode(errors="replace"): parts[i + 1].decode(errors="replace")
                for i in range(0, len(parts) - 1, 2)
                if parts[i]
            }
        )
        if self.auth == "cleartext":
            wire.send(_message(b"R", struct.pack("!i", 3)))
            kind, payload = wire.message()
            if kind != b"p":
                return
            self.passwords.append(payload.rstrip(b"\0"))
        if self.startup_error is not None:
            wire.send(error_response(*self.startup_error, severity="FATAL"))
            return
        greeting = _message(b"R", struct.pack("!i", 0))
        for name, value in (
            ("server_version", "16.4"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("TimeZone", "UTC"),
        ):
            greeting += _message(b"S", _cstring(name) + _cstring(value))
        greeting += _message(b"K", struct.pack("!ii", 4242, 2424)) + ready()
        wire.send(greeting)
        self._queries(wire)

    def _queries(self, wire: _Wire) -> None:
        statements: dict[bytes, str] = {}  # prepared in this session, by name (b"": unnamed)
        result = _Result()
        failed = False
        while True:
            kind, payload = wire.message()
            if kind == b"X":
                return
            if kind == b"Q":
                query = payload.rstrip(b"\0").decode(errors="replace")
                self.queries.append(query)
                result = self._answer(query)
                if result.error is not None:
                    wire.send(result.error + ready())
                    continue
                assert result.description is not None
                wire.send(result.description)
                count = self._send_rows(wire, result.rows)
                wire.send(_message(b"C", _cstring(f"SELECT {count}")) + ready())
            elif kind == b"S":
                failed = False
                wire.send(ready())
            elif failed:
                continue  # after an error, the extended protocol skips to the next Sync
            elif kind == b"P":  # Parse: name, query; its rows come when it is bound
                name, text = payload.split(b"\0")[:2]
                if self.query_error is not None:
                    wire.send(error_response(*self.query_error))
                    failed = True
                    continue
                statements[name] = text.decode(errors="replace")
                wire.send(_message(b"1"))
            elif kind == b"B":  # Bind: portal, statement, ...
                query = statements.get(payload.split(b"\0")[1], "")
                self.queries.append(query)
                result = self._answer(query)
                if result.error is not None:
                    wire.send(result.error)
                    failed = True
                else:
                    wire.send(_message(b"2"))
            elif kind == b"D":  # Describe a statement ('S' name) or the bound portal ('P')
                if payload[:1] == b"S":
                    described = self._answer(statements.get(payload[1:].rstrip(b"\0"), ""))
                    wire.send(_message(b"t", struct.pack("!h", 0)))
                    wire.send(described.description or _message(b"n"))
                else:
                    wire.send(result.description or _message(b"n"))
            elif kind == b"E":
                count = self._send_rows(wire, result.rows)
                wire.send(_message(b"C", _cstring(f"SELECT {count}")))
            elif kind == b"C":
                wire.send(_message(b"3"))
            elif kind == b"H":
                continue

    def _answer(self, query: str) -> _Result:
        if self.query_error is not None:
            return _Result(error=error_response(*self.query_error))
        if "information_schema.columns" in query or "a.attname" in query:
            described = row_description(
                [
                    ("column_name", NAME_OID),
                    ("data_type", VARCHAR_OID),
                    ("is_nullable", VARCHAR_OID),
                ]
            )
            return _Result(described, self.columns())
        if "relkind" in query:
            described = row_description([("relkind", CHAR_OID), ("column_count", INT8_OID)])
            return _Result(described, [("r", self.column_count)])
        if "pg_namespace" in query:
            return _Result(row_description([("?column?", INT4_OID)]), [(1,)])
        return _Result(row_description([("?column?", INT4_OID)]), [(1,)])

    def _send_rows(self, wire: _Wire, rows: Iterable[Row]) -> int:
        count = 0
        batch: list[bytes] = []
        try:
            for row in rows:
                if count == self.stall_after:
                    wire.send(b"".join(batch))
                    wire.until_closed()
                    raise _Closed
                batch.append(data_row(row))
                count += 1
                if len(batch) == ROWS_PER_WRITE:
                    wire.send(b"".join(batch))
                    batch = []
            wire.send(b"".join(batch))
        except OSError:
            with self._lock:
                self.cut_short += 1
            raise
        finally:
            self.rows_sent.append(count)
        return count


class _Wire:
    """One client's socket: whole reads, whole writes."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self._sock.recv(size - len(data))
            if not chunk:
                raise _Closed
            data += chunk
        return data

    def message(self) -> tuple[bytes, bytes]:
        kind = self.read(1)
        (length,) = struct.unpack("!i", self.read(4))
        return kind, self.read(length - 4)

    def until_closed(self) -> None:
        """Read and drop whatever comes until the client closes the connection."""
        while self._sock.recv(4096):
            pass

    def send(self, data: bytes) -> None:
        if data:
            self._sock.sendall(data)


def numbered_columns(count: int) -> Callable[[], Iterator[Row]]:
    """`count` columns `c1` ... `cN`, made one by one as the server sends them."""

    def rows() -> Iterator[Row]:
        return ((f"c{i}", "integer", "YES") for i in range(1, count + 1))

    return rows
