"""The PostgreSQL connector: a table's live columns from `information_schema.columns`."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Awaitable, Generator, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar, cast

import psycopg
from psycopg import generators, waiting
from psycopg.abc import PQGen
from psycopg.pq import ExecStatus
from psycopg.pq.abc import PGconn, PGresult

from adapters.connectors.outbound import OutboundPolicy, PolicyRefused
from adapters.connectors.pools import AsyncConnectionPools, Target
from domain.connections import ConnectionField, check_connection
from domain.errors import BackendUnavailable, FieldError, HostNotAllowed, InvalidConnection
from domain.hosts import host_problem
from domain.sources import MAX_COLUMNS, Column

RV = TypeVar("RV")

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# The modes in which libpq checks the server's certificate: the only servers trusted with a
# password sent in clear.
VERIFIED_SSL_MODES = ("verify-ca", "verify-full")
# libpq's `require_auth` for "any method but the cleartext password" (libpq 16 and later; the
# one psycopg's binary package bundles is newer).
REQUIRE_AUTH = "!password"
REFUSES_CLEARTEXT = psycopg.pq.version() >= 160000

# libpq waits at least this long for a connection, whatever connect_timeout says.
LIBPQ_MIN_CONNECT_TIMEOUT = 2
# Room for the catalog queries after a connection that took nearly the whole connect timeout.
QUERY_GRACE_SECONDS = 0.5
# How often psycopg wakes while it waits for the server (its own default).
WAIT_INTERVAL = 0.1
# A path that can never exist, so libpq never reads this process's own ~/.pgpass for a stranger.
NO_PASSFILE = os.path.join(os.devnull, "pgpass")
# The most rows of a catalog query's answer that are read: one more than a schema may have
# columns, which tells that it has too many. The queries ask for no more, and a server that
# sends more anyway is left mid-answer, its connection closed.
ROWS_READ = MAX_COLUMNS + 1
# The longest catalog text taken: PostgreSQL's names have at most 63 bytes, its type names a
# few dozen characters. A longer value comes from no PostgreSQL server (`protocol_error`).
MAX_CATALOG_TEXT = 1024

_FIND_RELATION = """
SELECT c.relkind,
       (SELECT count(*) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS column_count
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
"""

_SCHEMA_EXISTS = "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1"

_COLUMNS = f"""
SELECT column_name, data_type, is_nullable
  FROM information_schema.columns
 WHERE table_schema = $1 AND table_name = $2
 ORDER BY ordinal_position
 LIMIT {ROWS_READ}
"""

# information_schema.columns leaves materialized views out; this is its own definition of
# data_type, is_nullable and visibility, applied to pg_attribute directly.
_MATERIALIZED_VIEW_COLUMNS = f"""
SELECT a.attname,
       CASE WHEN t.typtype = 'd' THEN
              CASE WHEN bt.typelem <> 0 AND bt.typlen = -1 THEN 'ARRAY'
                   WHEN nbt.nspname = 'pg_catalog' THEN pg_catalog.format_type(t.typbasetype, NULL)
                   ELSE 'USER-DEFINED' END
            WHEN t.typelem <> 0 AND t.typlen = -1 THEN 'ARRAY'
            WHEN nt.nspname = 'pg_catalog' THEN pg_catalog.format_type(a.atttypid, NULL)
            ELSE 'USER-DEFINED' END,
       CASE WHEN a.attnotnull OR (t.typtype = 'd' AND t.typnotnull) THEN 'NO' ELSE 'YES' END
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  JOIN pg_catalog.pg_namespace nt ON nt.oid = t.typnamespace
  LEFT JOIN (pg_catalog.pg_type bt JOIN pg_catalog.pg_namespace nbt ON nbt.oid = bt.typnamespace)
         ON t.typtype = 'd' AND t.typbasetype = bt.oid
 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
   AND (pg_catalog.pg_has_role(c.relowner, 'USAGE')
        OR pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT, INSERT, UPDATE, REFERENCES'))
 ORDER BY a.attnum
 LIMIT {ROWS_READ}
"""


class Statement(NamedTuple):
    """A catalog query, prepared once in each connection's session, under its name."""

    name: bytes
    sql: bytes


FIND_RELATION = Statement(b"tdb_find_relation", _FIND_RELATION.encode())
SCHEMA_EXISTS = Statement(b"tdb_schema_exists", _SCHEMA_EXISTS.encode())
COLUMNS = Statement(b"tdb_columns", _COLUMNS.encode())
MATERIALIZED_VIEW_COLUMNS = Statement(
    b"tdb_materialized_view_columns", _MATERIALIZED_VIEW_COLUMNS.encode()
)

# Errors raised by the server carry a SQLSTATE: the reason, and a detail made of known facts.
# No text the server or libpq sent is shown: it may quote anything, a password included.
SQLSTATE_DETAILS = {
    "28000": ("auth_failed", "{where} does not accept user {user!r} here"),
    "28P01": ("auth_failed", "{where} rejected the credentials of user {user!r}"),
    "3D000": ("database_not_found", "{where} has no database {dbname!r}"),
    "42P01": ("table_not_found", "no table or view {table!r} in schema {schema!r}"),
    "3F000": ("table_not_found", "no schema {schema!r}"),
    "42501": ("permission_denied", "user {user!r} lacks a privilege the inspection needs"),
    "57014": ("timeout", "{where} cancelled the inspection: it ran past the statement timeout"),
    "55P03": ("timeout", "{where}: a lock held the inspection past its timeout"),
    "57P01": ("unreachable", "{where} is shutting down"),
    "57P02": ("unreachable", "{where} is shutting down"),
    "57P03": ("unreachable", "{where} is starting up or shutting down"),
    "53300": ("unreachable", "{where} has no connection slot left"),
}
REASON_BY_SQLSTATE = {sqlstate: reason for sqlstate, (reason, _) in SQLSTATE_DETAILS.items()}
# What a SQLSTATE is: five digits or upper-case letters.
SQLSTATE = re.compile(r"[0-9A-Z]{5}")

# Errors met while connecting have no SQLSTATE in libpq, only a message: read it, in order.
REASON_BY_MESSAGE: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reason, detail)
    for pattern, reason, detail in (
        (
            r"server requested a cleartext password",
            "auth_failed",
            "{where} asked for the password in clear, which tdb sends only over TLS to a"
            " server whose certificate it verified (sslmode 'verify-ca' or 'verify-full')",
        ),
        (r"timeout expired", "timeout", "no answer from {where} within the connect timeout"),
        (
            r"authentication failed|no password supplied",
            "auth_failed",
            "{where} rejected the credentials of user {user!r}",
        ),
        (r"role \".*\" does not exist", "auth_failed", "{where} has no role {user!r}"),
        (r"no pg_hba\.conf entry", "auth_failed", "{where} does not accept user {user!r} here"),
        (
            r"database \".*\" does not exist",
            "database_not_found",
            "{where} has no database {dbname!r}",
        ),
        (
            r"does not support SSL, but SSL was required",
            "ssl_unavailable",
            "{where} does not offer SSL, and sslmode {sslmode!r} requires it",
        ),
        (
            r"certificate|SSL error|sslmode value|SSL connection has been closed",
            "ssl_failed",
            "the SSL handshake with {where} failed (sslmode {sslmode!r})",
        ),
        (
            r"invalid response to SSL negotiation|expected authentication request|"
            r"invalid length of startup packet|unsupported frontend protocol|"
            r"received invalid response",
            "protocol_error",
            "{where} answered, but not as a PostgreSQL server does (is it another service,"
            " such as an HTTP server?)",
        ),
        (
            r"failed to resolve host|could not translate host name|name or service not known",
            "unreachable",
            "cannot resolve the host name {host!r}",
        ),
        (r"connection refused", "unreachable", "{where} refused the connection"),
        (
            r"no route to host|network is unreachable|host is unreachable",
            "unreachable",
            "no route to {where}",
        ),
        (r"no such file or directory", "unreachable", "no server socket at {where}"),
        (
            r"server closed the connection|connection reset|terminating connection|"
            r"consuming input failed|connection is lost|the connection is closed",
            "unreachable",
            "{where} closed the connection",
        ),
    )
)


class QueryDeadline(psycopg.OperationalError):
    """A query on an `AsyncDeadlineConnection` ran past its deadline (the connection is then
    dropped)."""


class AsyncDeadlineConnection(psycopg.AsyncConnection[tuple[Any, ...]]):
    """An asyncio connection whose queries give up at `deadline` (a `time.monotonic()` instant),
    if set.

    A query awaited past the deadline raises `QueryDeadline`; one whose caller was cancelled
    stops being awaited at once (psycopg's own `wait` would first ask the server to cancel it
    and wait seconds for that). Either way the connection is left in the middle of a query,
    and the pool closes it rather than keep it.
    """

    deadline: float | None = None

    async def wait(
        self, gen: PQGen[RV], interval: float = WAIT_INTERVAL, timeout: float | None = None
    ) -> RV:
        deadline = self.deadline
        if deadline is not None:
            remaining = max(0.0, deadline - time.monotonic())
            timeout = remaining if timeout is None else min(timeout, remaining)
        try:
            return await waiting.wait_async(
                gen, self.pgconn.socket, interval=interval, timeout=timeout
            )
        except psycopg.OperationalError as exc:
            if deadline is not None and exc.sqlstate is None and time.monotonic() >= deadline:
                raise QueryDeadline("no answer before the deadline") from None
            raise


@contextlib.contextmanager
def _until(conn: psycopg.AsyncConnection[tuple[Any, ...]], deadline: float) -> Iterator[None]:
    """Queries on `conn` (a deadline connection) give up at `deadline` within this block."""
    if not isinstance(conn, AsyncDeadlineConnection):
        yield
        return
    conn.deadline = deadline
    try:
        yield
    finally:
        conn.deadline = None


def _target(connection: Mapping[str, Any]) -> Target:
    """What a connection is made with: equal targets share pooled connections."""
    return Target(
        host=connection["host"],
        port=connection["port"],
        dbname=connection["dbname"],
        user=connection["user"],
        password=connection.get("password") or "",
        sslmode=connection.get("sslmode"),
    )


def _not_allowed(host: str) -> str:
    return f"the outbound policy does not allow connecting to {host!r}"


def backend_unavailable(exc: psycopg.Error, connection: Mapping[str, Any]) -> BackendUnavailable:
    """The `BackendUnavailable` that says why psycopg failed, from facts that hold no secret.

    The detail is written from the connection's public fields and the error's class: never
    from the error's own text, and never "masked" afterwards (masking shows what it hides).
    """
    facts = {
        "where": f"{connection.get('host')}:{connection.get('port')}",
        "host": connection.get("host"),
        "user": connection.get("user"),
        "dbname": connection.get("dbname"),
        "schema": connection.get("schema"),
        "table": connection.get("table"),
        "sslmode": connection.get("sslmode") or "prefer",
    }
    sqlstate = exc.sqlstate
    if sqlstate is not None:
        if sqlstate in SQLSTATE_DETAILS:
            reason, template = SQLSTATE_DETAILS[sqlstate]
            return BackendUnavailable(reason, template.format(**facts))
        # The code is named only when it is one: the field is the server's to fill with anything.
        code = f"SQLSTATE {sqlstate}" if SQLSTATE.fullmatch(sqlstate) else "a malformed SQLSTATE"
        return BackendUnavailable(
            "backend_error", f"{facts['where']} reported {code} ({type(exc).__name__})"
        )
    if isinstance(exc, QueryDeadline):
        return BackendUnavailable(
            "timeout", "{where} gave no answer before the inspection's deadline".format(**facts)
        )
    if isinstance(exc, psycopg.errors.ConnectionTimeout):
        return BackendUnavailable(
            "timeout", "no answer from {where} within the connect timeout".format(**facts)
        )
    message = str(exc)
    for pattern, reason, template in REASON_BY_MESSAGE:
        if pattern.search(message):
            return BackendUnavailable(reason, template.format(**facts))
    return BackendUnavailable(
        "backend_error",
        "the connection to {where} failed in a way tdb does not recognise"
        f" ({type(exc).__name__})".format(**facts),
    )


class PostgresConnector:
    """Reads a table's, view's or materialized view's columns from a live PostgreSQL server.

    Every failure becomes `BackendUnavailable` with one of these reasons: `unreachable`,
    `timeout`, `auth_failed`, `database_not_found`, `table_not_found` (no such schema or
    relation), `permission_denied` (the relation exists but the user may see none of its
    columns), `host_not_allowed` (the outbound policy), `busy` (every connection the target
    may have is in use), `ssl_unavailable`, `ssl_failed`, `protocol_error` (not a PostgreSQL
    server), `too_many_columns` (more than 1600: the answer is read no further) or
    `backend_error`. The whole inspection ends within `connect_timeout` plus half a
    second, even while DNS hangs or the host drops packets. Connections are pooled per target;
    each goes to an address the outbound policy allowed, and is a read-only session. A password
    is never sent in clear but to a server whose certificate was verified (sslmode `verify-ca`
    or `verify-full`): a server that asks for it so is `auth_failed`, and gets nothing.

    Inspections are awaited on asyncio connections, with no thread; only a host name's lookup,
    which may hang, goes to a thread, under the inspection's deadline.
    """

    source_type = "postgres"
    title = "PostgreSQL table"
    origin = "builtin"
    package: str | None = None
    fields: Sequence[ConnectionField] = (
        ConnectionField(
            "host", required=True, target=True, description="The server's host name or address"
        ),
        ConnectionField(
            "port",
            type=int,
            default=5432,
            min_value=1,
            max_value=65535,
            target=True,
            description="The server's TCP port",
        ),
        ConnectionField("dbname", required=True, target=True, description="The database"),
        ConnectionField("user", required=True, target=True, description="The role to log in as"),
        ConnectionField(
            "password", secret=True, allow_empty=True, description="The role's password"
        ),
        ConnectionField("table", required=True, description="The table, view or materialized view"),
        ConnectionField("schema", default="public", description="The schema of the table"),
        ConnectionField(
            "sslmode",
            choices=SSL_MODES,
            description="libpq's sslmode; libpq's default when not given",
        ),
    )

    def __init__(
        self,
        connect_timeout: float = 5.0,
        statement_timeout_ms: int = 5000,
        *,
        policy: OutboundPolicy | None = None,
        pools: AsyncConnectionPools | None = None,
        application_name: str = "tdb-inspect",
    ) -> None:
        self._connect_timeout = connect_timeout
        self._statement_timeout_ms = statement_timeout_ms
        self._policy = OutboundPolicy() if policy is None else policy
        self._pools = AsyncConnectionPools() if pools is None else pools
        self._application_name = application_name

    async def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        """The normalized connection, its host allowed by the outbound policy if it resolves:
        an address, or a host name whose addresses are known, is checked in place; a lookup
        that could wait goes to a thread, gets the connect timeout, then the benefit of the
        doubt (every inspection checks again)."""
        checked = self._checked(connection)
        host, port = checked["host"], checked["port"]
        try:
            if self._policy.resolve_now(host, port) is None:
                deadline = time.monotonic() + self._connect_timeout
                await self._resolve(host, port, deadline, f"resolving {host!r}")
        except PolicyRefused:
            raise HostNotAllowed("connection.host", _not_allowed(host)) from None
        except BackendUnavailable:
            pass  # not resolvable now: every inspection checks again
        return checked

    async def check(self, connection: Mapping[str, Any]) -> None:
        # The schema would answer now exactly when an inspection succeeds.
        await self.inspect(connection)

    async def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        """The columns, on a pooled asyncio connection or a new one, and no thread.

        Only a host name whose addresses are not known yet is looked up on a thread (a lookup
        may hang). The whole inspection ends within `connect_timeout` plus half a second.
        """
        connection = self._checked(connection)
        target = _target(connection)
        self._pools.admit(target)
        where = _where(connection)
        deadline = time.monotonic() + self._budget
        host, port = connection["host"], connection["port"]
        try:
            known = self._policy.resolve_now(host, port)
            hostaddrs = await self._resolve(host, port, deadline, where) if known is None else known
        except PolicyRefused:
            raise BackendUnavailable("host_not_allowed", _not_allowed(host)) from None

        async def connect(addresses: Sequence[str]) -> psycopg.AsyncConnection[Any]:
            made = AsyncDeadlineConnection.connect(**self._connect_params(connection, addresses))
            return await _before(made, deadline, where, self._budget)

        async def work(conn: psycopg.AsyncConnection[Any]) -> list[Column]:
            with _until(conn, deadline):
                return await _columns(conn, connection)

        try:
            return await self._pools.run(target, hostaddrs, connect, work, deadline)
        except psycopg.Error as exc:
            raise backend_unavailable(exc, connection) from None

    async def forget(self, connection: Mapping[str, Any]) -> None:
        """Close the pooled connections of this connection's target (its secret is not read)."""
        port = connection.get("port")
        place = (
            str(connection.get("host")),
            port if isinstance(port, int) else 5432,
            str(connection.get("dbname")),
            str(connection.get("user")),
            connection.get("sslmode"),
        )
        self._pools.forget(place)

    @property
    def _budget(self) -> float:
        """Seconds a whole inspection may take."""
        return self._connect_timeout + QUERY_GRACE_SECONDS

    async def _resolve(self, host: str, port: int, deadline: float, where: str) -> tuple[str, ...]:
        """The host's addresses the policy allows, looked up on a thread until `deadline`."""
        lookup = asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self._policy.resolve, host, port)
        )
        return await _before(lookup, deadline, where, self._budget)

    def _checked(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        """The connection checked against the declared fields and the host rules (no lookup)."""
        checked = check_connection(self.fields, connection)
        problem = host_problem(checked["host"])
        if problem is not None:
            raise InvalidConnection([FieldError("connection.host", problem)])
        return checked

    def _connect_params(
        self, connection: Mapping[str, Any], hostaddrs: Sequence[str]
    ) -> dict[str, Any]:
        """Keyword parameters for psycopg, which quotes each one: nothing is formatted by hand."""
        params: dict[str, Any] = {
            # The name for TLS verification and messages; the checked addresses to connect to,
            # so libpq never looks the name up again.
            "host": ",".join([connection["host"]] * len(hostaddrs)),
            "hostaddr": ",".join(hostaddrs),
            "port": connection["port"],
            "dbname": connection["dbname"],
            "user": connection["user"],
            # Explicit, even when empty: otherwise libpq would offer this process's own
            # PGPASSWORD or ~/.pgpass to whatever host the source names.
            "password": connection.get("password") or "",
            "passfile": NO_PASSFILE,
            "connect_timeout": max(LIBPQ_MIN_CONNECT_TIMEOUT, math.ceil(self._connect_timeout)),
            "options": (
                f"-c statement_timeout={int(self._statement_timeout_ms)}"
                " -c default_transaction_read_only=on"
            ),
            # A connection abandoned at the deadline still ends soon if the network goes silent.
            "keepalives": 1,
            "keepalives_idle": max(1, math.ceil(self._connect_timeout)),
            "keepalives_interval": 1,
            "keepalives_count": 3,
            "tcp_user_timeout": int(self._connect_timeout * 1000) + int(self._statement_timeout_ms),
            "application_name": self._application_name,
            "autocommit": True,
        }
        if connection.get("sslmode"):
            params["sslmode"] = connection["sslmode"]
        if connection.get("sslmode") not in VERIFIED_SSL_MODES:
            # Whoever answers at the address may ask for the password in clear: libpq then
            # refuses, before it sends anything. Only a server whose certificate was verified
            # is trusted with it. A libpq too old to refuse is given no password to send.
            if REFUSES_CLEARTEXT:
                params["require_auth"] = REQUIRE_AUTH
            else:
                params["password"] = ""
        return params


# The catalog queries of an inspection, as a generator: it yields each query with its
# parameters, is sent the rows, and returns the columns: the logic apart from the driver that
# runs it (`_columns`, on an asyncio connection).
# A row of a catalog query's answer: its values as text (None for a null).
Row = tuple[str | None, ...]
Queries = Generator[tuple[Statement, tuple[str, ...]], list[Row], list[Column]]


def _column_queries(connection: Mapping[str, Any]) -> Queries:
    schema, table = connection["schema"], connection["table"]
    # One query answers the common case; an empty answer is then explained (a missing
    # relation, a materialized view, which information_schema leaves out, or no privilege).
    rows = yield COLUMNS, (schema, table)
    if not rows:
        found = yield FIND_RELATION, (schema, table)
        if not found:
            has_schema = bool((yield SCHEMA_EXISTS, (schema,)))
            raise BackendUnavailable(
                "table_not_found",
                f"no table or view {table!r} in schema {schema!r}"
                if has_schema
                else f"no schema {schema!r}",
            )
        relkind, count = _shaped(found[0], 2, connection)
        if not (count.isascii() and count.isdigit()):
            raise _odd_answer(connection)
        column_count = int(count)
        if relkind == "m":
            rows = yield MATERIALIZED_VIEW_COLUMNS, (schema, table)
        if not rows and column_count:
            raise BackendUnavailable(
                "permission_denied",
                f"user {connection['user']!r} has no privilege on {schema!r}.{table!r}",
            )
    if len(rows) > MAX_COLUMNS:
        raise BackendUnavailable(
            "too_many_columns",
            f"{schema!r}.{table!r} has more than {MAX_COLUMNS} columns; at most {MAX_COLUMNS}"
            " columns are read (PostgreSQL's limit)",
        )
    return [
        Column(name, data_type, nullable == "YES")
        for name, data_type, nullable in (_shaped(row, 3, connection) for row in rows)
    ]


def _shaped(row: Row, width: int, connection: Mapping[str, Any]) -> tuple[str, ...]:
    """The row, if it has `width` values, none null or too long; else `protocol_error`."""
    if len(row) == width and all(
        value is not None and len(value) <= MAX_CATALOG_TEXT for value in row
    ):
        return cast(tuple[str, ...], row)
    raise _odd_answer(connection)


def _odd_answer(connection: Mapping[str, Any]) -> BackendUnavailable:
    return BackendUnavailable(
        "protocol_error",
        f"{_where(connection)} answered the catalog queries as no PostgreSQL server does",
    )


async def _columns(
    conn: psycopg.AsyncConnection[tuple[Any, ...]], connection: Mapping[str, Any]
) -> list[Column]:
    queries = _column_queries(connection)
    query = next(queries)
    while True:
        rows = await conn.wait(_rows(conn.pgconn, *_sent(conn, query, connection)))
        if len(rows) == ROWS_READ:
            await conn.close()
        try:
            query = queries.send(rows)
        except StopIteration as done:
            return done.value


# The catalog statements prepared in each connection's session, by connection.
_PREPARED: weakref.WeakKeyDictionary[object, set[bytes]] = weakref.WeakKeyDictionary()
_PREPARED_LOCK = threading.Lock()


def _sent(
    conn: psycopg.AsyncConnection[Any],
    query: tuple[Statement, tuple[str, ...]],
    connection: Mapping[str, Any],
) -> tuple[Statement, list[bytes | None], str, set[bytes]]:
    """What `_rows` needs to run `query` on `conn`: the statement, its parameters in the
    connection's encoding, the encoding its answer is read in, and what is prepared."""
    statement, params = query
    encoding = conn.info.encoding
    # A SQL_ASCII database converts nothing: its bytes are most likely UTF-8.
    encoding = "utf-8" if encoding == "ascii" else encoding
    try:
        encoded: list[bytes | None] = [param.encode(encoding) for param in params]
    except UnicodeEncodeError:
        raise _unspellable(connection) from None
    with _PREPARED_LOCK:
        prepared = _PREPARED.setdefault(conn, set())
    return statement, encoded, encoding, prepared


def _rows(
    pgconn: PGconn,
    statement: Statement,
    params: list[bytes | None],
    encoding: str,
    prepared: set[bytes],
) -> PQGen[list[Row]]:
    """The rows of `statement`'s answer, at most `ROWS_READ` of them, read as they come.

    The statement is prepared first if this session has not prepared it yet. Its answer is
    read one row at a time: a server that sends more than `ROWS_READ` is left mid-answer (the
    caller closes the connection). Text that is not valid in the connection's encoding (a
    `SQL_ASCII` database holds whatever bytes its clients wrote) is read with U+FFFD.
    A generator, sans I/O: `conn.wait` runs it (with its deadline).
    """
    if statement.name not in prepared:
        pgconn.send_prepare(statement.name, statement.sql)
        results = yield from generators.execute(pgconn)
        _raise_failed(results, encoding)
        prepared.add(statement.name)
    pgconn.send_query_prepared(statement.name, params)
    pgconn.set_single_row_mode()
    yield from generators.send(pgconn)
    rows: list[Row] = []
    failed: list[PGresult] = []
    while (result := (yield from generators.fetch(pgconn))) is not None:
        if result.status == ExecStatus.SINGLE_TUPLE:
            rows.append(
                tuple(_text(result.get_value(0, i), encoding) for i in range(result.nfields))
            )
            if len(rows) == ROWS_READ:
                return rows
        elif result.status != ExecStatus.TUPLES_OK:
            failed.append(result)
    _raise_failed(failed, encoding)
    return rows


def _raise_failed(results: Sequence[PGresult], encoding: str) -> None:
    """Raise the psycopg error of the first result that is one (an `ErrorResponse`)."""
    for result in results:
        if result.status not in (ExecStatus.COMMAND_OK, ExecStatus.TUPLES_OK):
            raise psycopg.errors.error_from_result(result, encoding=encoding)


def _text(value: bytes | None, encoding: str) -> str | None:
    return None if value is None else value.decode(encoding, "replace")


def _unspellable(connection: Mapping[str, Any]) -> BackendUnavailable:
    """A schema or table name the database's encoding (LATIN1, say) has no characters for:
    no such relation can exist there."""
    schema, table = connection["schema"], connection["table"]
    return BackendUnavailable(
        "table_not_found",
        f"no table or view {table!r} in schema {schema!r}: the database's encoding cannot"
        " spell these names",
    )


def _where(connection: Mapping[str, Any]) -> str:
    return f"PostgreSQL at {connection['host']}:{connection['port']}"


async def _before(work: Awaitable[RV], deadline: float, where: str, budget: float) -> RV:
    """What `work` gives, or `BackendUnavailable("timeout")` once `deadline` has passed."""
    try:
        return await asyncio.wait_for(work, max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        raise BackendUnavailable("timeout", f"{where} gave no answer within {budget:g} s") from None
