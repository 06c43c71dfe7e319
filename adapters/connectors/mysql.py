"""The MySQL/MariaDB connector: a table's live columns from `information_schema.columns`.

Through PyMySQL (pure Python, the driver most Python MySQL tooling builds on), on threads: a
blocking call goes to a thread under the inspection's deadline, and one still running at the
deadline is cut off by closing its socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio.to_thread
import pymysql
import pymysql.cursors
from pymysql.connections import Connection

from adapters.connectors.outbound import OutboundPolicy, PolicyRefused
from adapters.connectors.pools import AsyncConnectionPools, ConnectionKind, Target
from domain.connections import ConnectionField, check_connection
from domain.errors import BackendUnavailable, FieldError, HostNotAllowed, InvalidConnection
from domain.hosts import host_problem
from domain.sources import MAX_COLUMNS, Column

T = TypeVar("T")

SSL_MODES = ("disabled", "preferred", "required", "verify_ca", "verify_identity")
VERIFIED_SSL_MODES = ("verify_ca", "verify_identity")
# The authentication plugins that send the password as it is: only to a verified TLS server.
CLEARTEXT_PLUGINS = (b"mysql_clear_password", b"dialog")
QUERY_GRACE_SECONDS = 0.5
ROWS_READ = MAX_COLUMNS + 1
MAX_CATALOG_TEXT = 1024

COLUMNS = f"""
SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE
  FROM information_schema.columns
 WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s
 ORDER BY ORDINAL_POSITION
 LIMIT {ROWS_READ}
"""
TABLE_EXISTS = "SELECT 1 FROM information_schema.tables WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"

# Server and client error numbers: the reason, and a detail made of known facts. No text the
# server sent is shown: it may quote anything.
ERROR_DETAILS = {
    1045: ("auth_failed", "{where} rejected the credentials of user {user!r}"),
    1044: ("auth_failed", "{where} does not let user {user!r} use database {dbname!r}"),
    1130: ("auth_failed", "{where} does not accept user {user!r} from this host"),
    1251: ("auth_failed", "{where} asked for an authentication method tdb does not offer"),
    1049: ("database_not_found", "{where} has no database {dbname!r}"),
    1142: ("permission_denied", "user {user!r} lacks a privilege the inspection needs"),
    1143: ("permission_denied", "user {user!r} lacks a privilege the inspection needs"),
    1040: ("unreachable", "{where} has no connection slot left"),
    1129: ("unreachable", "{where} blocks this host after too many connection errors"),
    1053: ("unreachable", "{where} is shutting down"),
    2003: ("unreachable", "{where} refused the connection"),
    2006: ("unreachable", "{where} closed the connection"),
    2013: ("unreachable", "{where} closed the connection"),
    3159: ("ssl_unavailable", "{where} takes only TLS connections, and ssl_mode is 'disabled'"),
    1205: ("timeout", "{where}: a lock held the inspection past its timeout"),
    1969: ("timeout", "{where} cancelled the inspection: it ran past its time limit"),
    3024: ("timeout", "{where} cancelled the inspection: it ran past its time limit"),
}


class CleartextRefused(pymysql.err.OperationalError):
    """The server asked for the password in clear, and TLS with a verified server is not on."""


class NotTls(pymysql.err.OperationalError):
    """ssl_mode asked for TLS, and the server does not offer it."""


class _Connection(Connection):  # type: ignore[misc]
    """PyMySQL's connection, refusing to send the password in clear but to a server whose
    certificate was verified."""

    verified = False

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        # `preferred`: PyMySQL would make (and load CAs into) a context per connection.
        return sslp if isinstance(sslp, ssl.SSLContext) else _tls("preferred")

    def _process_auth(self, plugin_name: bytes, auth_packet: Any, handler: Any = None) -> Any:
        if plugin_name in CLEARTEXT_PLUGINS and not (self._secure and self.verified):
            raise CleartextRefused(2061, "cleartext password refused")
        return super()._process_auth(plugin_name, auth_packet, handler)

    def _request_authentication(self) -> None:
        if self._ssl_required and not self.server_capabilities & pymysql.constants.CLIENT.SSL:
            raise NotTls(2026, "no TLS")
        super()._request_authentication()


class Session:
    """One pooled MySQL connection, the address it goes to, and whether a call abandoned it
    (then it is never reused: a thread may still be reading from it)."""

    def __init__(self, connection: _Connection, hostaddr: str) -> None:
        self.connection = connection
        self.hostaddr = hostaddr
        self.abandoned = False
        self.lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return not self.abandoned and bool(self.connection.open)

    def close(self) -> None:
        """Close the socket at once, from any thread: a call blocked on it ends with an error."""
        self.abandoned = True
        sock = self.connection._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.connection._force_close()


MYSQL = ConnectionKind(
    error=pymysql.err.Error,
    alive=lambda session: session.alive,
    reusable=lambda session: session.alive,
    hostaddr=lambda session: session.hostaddr,
    close=lambda session: session.close(),
)


def mysql_pools(**bounds: Any) -> AsyncConnectionPools:
    """Per-target pools of MySQL sessions (`AsyncConnectionPools` over PyMySQL)."""
    return AsyncConnectionPools(kind=MYSQL, **bounds)


@functools.cache
def _tls(mode: str) -> ssl.SSLContext:
    """The TLS context of an ssl_mode, made once: loading the system's CA certificates takes
    longer than a whole pooled inspection."""
    if mode in VERIFIED_SSL_MODES:
        context = ssl.create_default_context()
        context.check_hostname = mode == "verify_identity"
        return context
    # Encrypted, the server unverified: no CA to load.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _ssl_context(mode: str) -> ssl.SSLContext | None:
    """The context PyMySQL is given: none for `disabled` and `preferred` (for which PyMySQL
    asks `_create_ssl_ctx`, and tries TLS only if the server offers it)."""
    return None if mode in ("disabled", "preferred") else _tls(mode)


def _where(connection: Mapping[str, Any]) -> str:
    return f"MySQL at {connection['host']}:{connection['port']}"


def backend_unavailable(exc: BaseException, connection: Mapping[str, Any]) -> BackendUnavailable:
    """Why the driver failed, from facts that hold no secret (never the error's own text)."""
    facts = {
        "where": _where(connection),
        "user": connection.get("user"),
        "dbname": connection.get("dbname"),
        "ssl_mode": connection.get("ssl_mode"),
    }
    if isinstance(exc, CleartextRefused):
        return BackendUnavailable(
            "auth_failed",
            "{where} asked for the password in clear, which tdb sends only over TLS to a server"
            " whose certificate it verified (ssl_mode 'verify_ca' or 'verify_identity')".format(
                **facts
            ),
        )
    if isinstance(exc, NotTls):
        return BackendUnavailable(
            "ssl_unavailable",
            "{where} does not offer TLS, and ssl_mode {ssl_mode!r} requires it".format(**facts),
        )
    if isinstance(exc, ssl.SSLError) or (
        isinstance(exc, pymysql.err.OperationalError) and "SSL" in str(exc)
    ):
        return BackendUnavailable(
            "ssl_failed",
            "the TLS handshake with {where} failed (ssl_mode {ssl_mode!r})".format(**facts),
        )
    code = exc.args[0] if isinstance(exc, pymysql.err.Error) and exc.args else None
    if isinstance(code, int) and code in ERROR_DETAILS:
        reason, template = ERROR_DETAILS[code]
        return BackendUnavailable(reason, template.format(**facts))
    if isinstance(exc, ConnectionRefusedError):
        return BackendUnavailable("unreachable", "{where} refused the connection".format(**facts))
    if isinstance(exc, TimeoutError | socket.timeout):
        return BackendUnavailable(
            "timeout", "no answer from {where} within the connect timeout".format(**facts)
        )
    if isinstance(exc, OSError):
        return BackendUnavailable("unreachable", "no route to {where}".format(**facts))
    if isinstance(exc, pymysql.err.Error) and isinstance(code, int):
        return BackendUnavailable(
            "backend_error", f"{facts['where']} reported error {code} ({type(exc).__name__})"
        )
    return BackendUnavailable(
        "protocol_error",
        "{where} answered, but not as a MySQL server does (is it another service?)".format(**facts),
    )


class MysqlConnector:
    """Reads a table's or view's columns from a live MySQL 8+ or MariaDB 10.6+ server.

    The columns come from `information_schema.columns` of the connection's database and table,
    in ordinal order, the names bound as parameters; `type` is the lower-case `DATA_TYPE` the
    server reports (`int`, `varchar`, `decimal`, `datetime`, `json`, `enum`, ...), `nullable`
    from `IS_NULLABLE`. The postgres connector's rules hold: host rules, the outbound policy on
    the resolved addresses, a connection made to a checked address (the name kept for TLS),
    pooling per target, the whole inspection within `connect_timeout` plus half a second, and
    the same reasons (`unreachable`, `timeout`, `auth_failed`, `database_not_found`,
    `table_not_found`, `permission_denied`, `host_not_allowed`, `busy`, `ssl_unavailable`,
    `ssl_failed`, `protocol_error`, `too_many_columns`, `backend_error`). The password is never
    sent in clear (`mysql_clear_password`, `dialog`) but over TLS to a server whose certificate
    was verified (`verify_ca`, `verify_identity`): such a server is `auth_failed`. Sessions are
    read-only.
    """

    source_type = "mysql"
    title = "MySQL or MariaDB table"
    origin = "builtin"
    package: str | None = None
    fields: Sequence[ConnectionField] = (
        ConnectionField(
            "host", required=True, target=True, description="The server's host name or address"
        ),
        ConnectionField(
            "port",
            type=int,
            default=3306,
            min_value=1,
            max_value=65535,
            target=True,
            description="The server's TCP port",
        ),
        ConnectionField(
            "dbname", required=True, target=True, description="The database (schema) of the table"
        ),
        ConnectionField("user", required=True, target=True, description="The user to log in as"),
        ConnectionField(
            "password", secret=True, allow_empty=True, description="The user's password"
        ),
        ConnectionField("table", required=True, description="The table or view"),
        ConnectionField(
            "ssl_mode",
            default="preferred",
            choices=SSL_MODES,
            description="TLS: never, if offered, always, with a verified CA, or also the host name",
        ),
    )

    def __init__(
        self,
        connect_timeout: float = 5.0,
        statement_timeout_ms: int = 5000,
        *,
        policy: OutboundPolicy | None = None,
        pools: AsyncConnectionPools | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._statement_timeout_ms = statement_timeout_ms
        self._policy = OutboundPolicy() if policy is None else policy
        self._pools = mysql_pools() if pools is None else pools

    @property
    def _budget(self) -> float:
        return self._connect_timeout + QUERY_GRACE_SECONDS

    def _checked(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        checked = check_connection(self.fields, connection)
        problem = host_problem(checked["host"])
        if problem is not None:
            raise InvalidConnection([FieldError("connection.host", problem)])
        return checked

    async def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        """As the postgres connector: the host allowed by the outbound policy if it resolves."""
        checked = self._checked(connection)
        host, port = checked["host"], checked["port"]
        try:
            if self._policy.resolve_now(host, port) is None:
                deadline = time.monotonic() + self._connect_timeout
                await self._resolve(host, port, deadline)
        except PolicyRefused:
            raise HostNotAllowed("connection.host", _not_allowed(host)) from None
        except BackendUnavailable:
            pass  # not resolvable now: every inspection checks again
        return checked

    async def check(self, connection: Mapping[str, Any]) -> None:
        await self.inspect(connection)

    async def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        connection = self._checked(connection)
        target = Target(
            host=connection["host"],
            port=connection["port"],
            dbname=connection["dbname"],
            user=connection["user"],
            password=connection.get("password") or "",
            sslmode=connection["ssl_mode"],
        )
        self._pools.admit(target)
        deadline = time.monotonic() + self._budget
        host, port = connection["host"], connection["port"]
        try:
            known = self._policy.resolve_now(host, port)
            hostaddrs = await self._resolve(host, port, deadline) if known is None else known
        except PolicyRefused:
            raise BackendUnavailable("host_not_allowed", _not_allowed(host)) from None

        async def connect(addresses: Sequence[str]) -> Session:
            return await _on_thread(
                functools.partial(self._connect, connection, addresses, deadline), deadline, None
            )

        async def work(session: Session) -> list[Column]:
            return await _on_thread(
                functools.partial(_columns, session, connection, deadline), deadline, session
            )

        try:
            return await self._pools.run(target, hostaddrs, connect, work, deadline)
        except TimeoutError:
            raise BackendUnavailable(
                "timeout", f"{_where(connection)} gave no answer within {self._budget:g} s"
            ) from None
        except (pymysql.err.Error, OSError, ValueError, IndexError, UnicodeError) as exc:
            if time.monotonic() >= deadline:
                raise BackendUnavailable(
                    "timeout", f"{_where(connection)} gave no answer within {self._budget:g} s"
                ) from None
            raise backend_unavailable(exc, connection) from None

    async def forget(self, connection: Mapping[str, Any]) -> None:
        port = connection.get("port")
        self._pools.forget(
            (
                str(connection.get("host")),
                port if isinstance(port, int) else 3306,
                str(connection.get("dbname")),
                str(connection.get("user")),
                connection.get("ssl_mode") or "preferred",
            )
        )

    async def _resolve(self, host: str, port: int, deadline: float) -> tuple[str, ...]:
        lookup = asyncio.get_running_loop().run_in_executor(
            None, functools.partial(self._policy.resolve, host, port)
        )
        try:
            return await asyncio.wait_for(lookup, max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise BackendUnavailable(
                "timeout", f"resolving {host!r} gave no answer within {self._budget:g} s"
            ) from None

    def _connect(
        self, connection: Mapping[str, Any], addresses: Sequence[str], deadline: float
    ) -> Session:
        """A new session to the first of `addresses` that answers (blocking: on a thread)."""
        failure: BaseException | None = None
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                sock = socket.create_connection((address, connection["port"]), remaining)
            except OSError as exc:
                failure = exc
                continue
            return self._session(connection, sock, address, deadline)
        raise failure if failure is not None else TimeoutError()

    def _session(
        self, connection: Mapping[str, Any], sock: socket.socket, address: str, deadline: float
    ) -> Session:
        mode = connection["ssl_mode"]
        remaining = max(0.001, deadline - time.monotonic())
        conn = _Connection(
            host=connection["host"],  # the name, for TLS; the socket goes to the checked address
            port=connection["port"],
            user=connection["user"],
            password=connection.get("password") or "",
            database=connection["dbname"],
            charset="utf8mb4",
            connect_timeout=remaining,
            read_timeout=remaining,
            write_timeout=remaining,
            autocommit=True,
            ssl=_ssl_context(mode),
            ssl_disabled=mode == "disabled",
            init_command="SET SESSION TRANSACTION READ ONLY",
            program_name="tdb-inspect",
            read_default_file=None,
            local_infile=False,
            defer_connect=True,
        )
        conn.verified = mode in VERIFIED_SSL_MODES
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        try:
            conn.connect(sock)
        except BaseException:
            sock.close()
            raise
        return Session(conn, address)


def _not_allowed(host: str) -> str:
    return f"the outbound policy does not allow connecting to {host!r}"


async def _on_thread(call: Callable[[], T], deadline: float, session: Session | None) -> T:
    """`call()` on a thread, given up at `deadline` (`TimeoutError`); a session it was using
    is then closed, which ends the thread's wait too."""
    running: Awaitable[T] = anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    try:
        return await asyncio.wait_for(running, max(0.0, deadline - time.monotonic()))
    except BaseException:
        if session is not None:
            session.close()
        raise


def _columns(session: Session, connection: Mapping[str, Any], deadline: float) -> list[Column]:
    """The columns, read on the session (blocking: on a thread), at most `ROWS_READ` rows."""
    conn = session.connection
    sock = conn._sock
    if sock is not None:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
    where = (connection["dbname"], connection["table"])
    with session.lock, conn.cursor(pymysql.cursors.SSCursor) as cursor:
        cursor.execute(COLUMNS, where)
        rows = cursor.fetchmany(ROWS_READ)
        if len(rows) == ROWS_READ:
            session.close()  # the rest of the answer is left unread
        if not rows:
            cursor.execute(TABLE_EXISTS, where)
            found = cursor.fetchall()
    if len(rows) > MAX_COLUMNS:
        raise BackendUnavailable(
            "too_many_columns",
            f"{connection['table']!r} has more than {MAX_COLUMNS} columns; at most"
            f" {MAX_COLUMNS} columns are read",
        )
    if not rows:
        table, dbname = connection["table"], connection["dbname"]
        if found:
            raise BackendUnavailable(
                "permission_denied", f"user {connection['user']!r} may see no column of {table!r}"
            )
        raise BackendUnavailable(
            "table_not_found", f"no table or view {table!r} in database {dbname!r}"
        )
    return [_column(row, connection) for row in rows]


def _column(row: Sequence[Any], connection: Mapping[str, Any]) -> Column:
    values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in row]
    if len(values) != 3 or not all(
        isinstance(v, str) and len(v) <= MAX_CATALOG_TEXT for v in values
    ):
        raise BackendUnavailable(
            "protocol_error", f"{_where(connection)} answered the catalog query as no MySQL does"
        )
    name, data_type, nullable = values
    return Column(name, data_type.lower(), nullable.upper() == "YES")
