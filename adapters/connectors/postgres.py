"""The PostgreSQL connector: a table's live columns from `information_schema.columns`."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from adapters.connectors.deadline import call_with_deadline
from domain.connections import ConnectionField, check_connection
from domain.errors import BackendUnavailable
from domain.sources import Column

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# libpq waits at least this long for a connection, whatever connect_timeout says.
LIBPQ_MIN_CONNECT_TIMEOUT = 2
# Room for the catalog queries after a connection that took nearly the whole connect timeout.
QUERY_GRACE_SECONDS = 0.5
# A path that can never exist, so libpq never reads this process's own ~/.pgpass for a stranger.
NO_PASSFILE = os.path.join(os.devnull, "pgpass")

_FIND_RELATION = """
SELECT c.relkind,
       (SELECT count(*) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS column_count
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
"""

_SCHEMA_EXISTS = "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s"

_COLUMNS = """
SELECT column_name, data_type, is_nullable
  FROM information_schema.columns
 WHERE table_schema = %s AND table_name = %s
 ORDER BY ordinal_position
"""

# information_schema.columns leaves materialized views out; this is its own definition of
# data_type, is_nullable and visibility, applied to pg_attribute directly.
_MATERIALIZED_VIEW_COLUMNS = """
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
 WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
   AND (pg_catalog.pg_has_role(c.relowner, 'USAGE')
        OR pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT, INSERT, UPDATE, REFERENCES'))
 ORDER BY a.attnum
"""

# Errors raised by the server carry a SQLSTATE.
REASON_BY_SQLSTATE = {
    "28000": "auth_failed",  # invalid_authorization_specification
    "28P01": "auth_failed",  # invalid_password
    "3D000": "database_not_found",  # invalid_catalog_name
    "42P01": "table_not_found",  # undefined_table
    "3F000": "table_not_found",  # invalid_schema_name
    "42501": "permission_denied",  # insufficient_privilege
    "57014": "timeout",  # query_canceled: statement_timeout or a cancel
    "55P03": "timeout",  # lock_not_available
    "57P01": "unreachable",  # admin_shutdown
    "57P03": "unreachable",  # cannot_connect_now: starting up or shutting down
}

# Errors met while connecting have no SQLSTATE in libpq, only a message: read it, in order.
REASON_BY_MESSAGE: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), reason, detail)
    for pattern, reason, detail in (
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
            r"server closed the connection|connection reset|terminating connection",
            "unreachable",
            "{where} closed the connection",
        ),
    )
)


def backend_unavailable(exc: psycopg.Error, connection: Mapping[str, Any]) -> BackendUnavailable:
    """The `BackendUnavailable` that says, safely, why psycopg failed (never with the password)."""
    where = f"{connection.get('host')}:{connection.get('port')}"
    facts = {
        "where": where,
        "host": connection.get("host"),
        "user": connection.get("user"),
        "dbname": connection.get("dbname"),
    }
    sqlstate = exc.sqlstate
    if sqlstate is not None:
        reason = REASON_BY_SQLSTATE.get(sqlstate, "backend_error")
        message = exc.diag.message_primary or str(exc).split("\n", 1)[0]
        detail = f"{where}: {message} (SQLSTATE {sqlstate})"
    elif isinstance(exc, psycopg.errors.ConnectionTimeout):
        reason, detail = "timeout", f"no answer from {where} within the connect timeout"
    else:
        reason, detail = "backend_error", f"{where}: {type(exc).__name__}"
        for pattern, pattern_reason, template in REASON_BY_MESSAGE:
            if pattern.search(str(exc)):
                reason, detail = pattern_reason, template.format(**facts)
                break
    password = connection.get("password")
    if password:
        detail = detail.replace(password, "********")
    return BackendUnavailable(reason, detail)


class PostgresConnector:
    """Reads a table's, view's or materialized view's columns from a live PostgreSQL server.

    Every failure becomes `BackendUnavailable` with one of these reasons: `unreachable`,
    `timeout`, `auth_failed`, `database_not_found`, `table_not_found` (no such schema or
    relation), `permission_denied` (the relation exists but the user may see none of its
    columns) or `backend_error`. The whole inspection ends within `connect_timeout` plus
    half a second, even while DNS hangs or the host drops packets.
    """

    source_type = "postgres"
    fields: Sequence[ConnectionField] = (
        ConnectionField("host", required=True),
        ConnectionField("port", type=int, default=5432, min_value=1, max_value=65535),
        ConnectionField("dbname", required=True),
        ConnectionField("user", required=True),
        ConnectionField("password", secret=True, allow_empty=True),
        ConnectionField("table", required=True),
        ConnectionField("schema", default="public"),
        ConnectionField("sslmode", choices=SSL_MODES),
    )

    def __init__(self, connect_timeout: float = 5.0, statement_timeout_ms: int = 5000) -> None:
        self._connect_timeout = connect_timeout
        self._statement_timeout_ms = statement_timeout_ms

    def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        return check_connection(self.fields, connection)

    def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        connection = self.validate(connection)
        where = f"PostgreSQL at {connection['host']}:{connection['port']}"
        return call_with_deadline(
            lambda: self._inspect(connection),
            self._connect_timeout + QUERY_GRACE_SECONDS,
            where,
        )

    def _inspect(self, connection: Mapping[str, Any]) -> list[Column]:
        schema, table = connection["schema"], connection["table"]
        try:
            with psycopg.connect(**self._connect_params(connection)) as conn:
                found = conn.execute(_FIND_RELATION, (schema, table)).fetchone()
                if found is None:
                    has_schema = conn.execute(_SCHEMA_EXISTS, (schema,)).fetchone() is not None
                    raise BackendUnavailable(
                        "table_not_found",
                        f"no table or view {table!r} in schema {schema!r}"
                        if has_schema
                        else f"no schema {schema!r}",
                    )
                relkind, column_count = found
                query = _MATERIALIZED_VIEW_COLUMNS if relkind == "m" else _COLUMNS
                rows = conn.execute(query, (schema, table)).fetchall()
        except psycopg.Error as exc:
            raise backend_unavailable(exc, connection) from None
        if not rows and column_count:
            raise BackendUnavailable(
                "permission_denied",
                f"user {connection['user']!r} has no privilege on {schema!r}.{table!r}",
            )
        return [Column(name, data_type, nullable == "YES") for name, data_type, nullable in rows]

    def _connect_params(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword parameters for psycopg, which quotes each one: nothing is formatted by hand."""
        params: dict[str, Any] = {
            "host": connection["host"],
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
            # A worker abandoned at the deadline still ends soon if the network goes silent.
            "keepalives": 1,
            "keepalives_idle": max(1, math.ceil(self._connect_timeout)),
            "keepalives_interval": 1,
            "keepalives_count": 3,
            "tcp_user_timeout": int(self._connect_timeout * 1000) + int(self._statement_timeout_ms),
            "application_name": "tdb-inspect",
            "autocommit": True,
        }
        if connection.get("sslmode"):
            params["sslmode"] = connection["sslmode"]
        return params
