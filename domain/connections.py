"""How a connector declares its connection fields, and the generic check against them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from domain.errors import FieldError, InvalidConnection

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean", float: "a number"}


@attrs.frozen
class ConnectionField:
    """One field of a connector's connection object."""

    name: str
    type: type = str
    required: bool = False
    default: Any = None
    secret: bool = False
    min_value: int | None = None
    max_value: int | None = None
    choices: tuple[Any, ...] | None = None
    allow_empty: bool = False
    target: bool = False
    """Part of where the connection goes (postgres: host, port, dbname, user): a stored secret
    is sent there only if whoever changes it could send the secret itself."""
    description: str = ""
    """What the field means, for people: the connection's JSON Schema shows it."""

    def errors(self, value: Any) -> list[FieldError]:
        """Problems with a value given for this field."""
        path = f"connection.{self.name}"
        # bool is an int in Python; JSON true is not a port number. A JSON number may be
        # written without a fraction: 2 is a number too.
        wanted = (int, float) if self.type is float else self.type
        if not isinstance(value, wanted) or (self.type in (int, float) and isinstance(value, bool)):
            return [FieldError(path, f"must be {_TYPE_NAMES.get(self.type, self.type.__name__)}")]
        if isinstance(value, str) and not value and not self.allow_empty:
            return [FieldError(path, "must not be empty")]
        if isinstance(value, str) and "\x00" in value:
            return [FieldError(path, "must not contain NUL characters")]
        if isinstance(value, int) and self.min_value is not None and value < self.min_value:
            return [FieldError(path, f"must be at least {self.min_value}")]
        if isinstance(value, int) and self.max_value is not None and value > self.max_value:
            return [FieldError(path, f"must be at most {self.max_value}")]
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            return [FieldError(path, f"must be one of {allowed}")]
        return []


def check_connection(
    fields: Sequence[ConnectionField], connection: Mapping[str, Any]
) -> dict[str, Any]:
    """The connection with defaults filled in; raises `InvalidConnection` naming every bad field."""
    if not isinstance(connection, Mapping):
        raise InvalidConnection([FieldError("connection", "must be an object")])
    by_name = {f.name: f for f in fields}
    errors = [
        FieldError(f"connection.{name}", "is not a known field")
        for name in connection
        if name not in by_name
    ]
    result: dict[str, Any] = {}
    for field in fields:
        if field.name in connection and connection[field.name] is not None:
            value = connection[field.name]
            # JSON has one number type: 5432.0 is the integer 5432 (JSON Schema says so too).
            if field.type is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            errors.extend(field.errors(value))
            result[field.name] = value
        elif field.required:
            errors.append(FieldError(f"connection.{field.name}", "is required"))
        elif field.default is not None:
            result[field.name] = field.default
    if errors:
        raise InvalidConnection(errors)
    return result


def secrets_left_behind(
    fields: Sequence[ConnectionField],
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    sent: Iterable[str],
) -> list[FieldError]:
    """An error on each stored secret that a change would keep unsent while it points the
    connection elsewhere (a target field differs from `before` to `after`); `sent`: the
    fields the change gave a value of its own. A secret goes only where it went, unless sent
    again: else whoever may change a connection could have its password sent to a host of
    theirs."""
    targets = [f.name for f in fields if f.target]
    if all(before.get(name) == after.get(name) for name in targets):
        return []
    given = set(sent)
    where = ", ".join(targets[:-1]) + f" or {targets[-1]}" if len(targets) > 1 else targets[0]
    return [
        FieldError(f"connection.{f.name}", f"must be sent again to change {where}")
        for f in fields
        if f.secret
        and f.name not in given
        and before.get(f.name)
        and after.get(f.name) == before.get(f.name)
    ]


@attrs.frozen
class ConnectionCheck:
    """The answer of a connection test: whether the schema would answer now, and if not why."""

    ok: bool
    reason: str | None
    detail: str
    elapsed_ms: float
    checked_at: datetime


# Why a backend cannot answer: every reason a connector may give (machines read it).
BACKEND_REASONS = frozenset(
    {
        "unreachable",
        "timeout",
        "auth_failed",
        "database_not_found",
        "table_not_found",
        "permission_denied",
        "backend_error",
        "file_not_found",
        "unreadable",
        "empty_file",
        "busy",
        "host_not_allowed",
        "ssl_unavailable",
        "ssl_failed",
        "protocol_error",
        "too_many_columns",
    }
)


@attrs.frozen
class ConnectorLoadFailure:
    """A plug-in connector that was not loaded, and why (it stops nothing else)."""

    source_type: str
    entry_point: str
    """The entry point as declared: `name = module:attribute`."""
    package: str | None
    """`name==version` of the distribution that declares it, if known."""
    error: str
