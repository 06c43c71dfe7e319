"""Plug-in connectors: classes that installed distributions declare in the entry-point group
`tdb.connectors`, adapted to the `Connector` port, and the loading that never lets a broken
one stop the server.

The plug-in protocol asks for nothing of tdb's. A plug-in is a class, constructed with no
argument, with:

- `title`: text, for people;
- `fields`: a sequence of field declarations, each with `name`, `type` (a JSON Schema type:
  `string`, `integer`, `boolean` or `number`), and optionally `description`, `required`,
  `default` and `secret`, read as attributes or as mapping keys;
- `inspect(connection)`, blocking or `async def`: given the connection as a dict of its
  declared fields (secrets in clear, defaults filled in), the columns in order, each with
  `name`, `type` and `nullable` (attributes or keys).

tdb gives it what a built-in connector has: validation against its fields, the deadline and
the concurrency bounds (`BackendBounds`), history, masking of secret fields and the reason
vocabulary. A blocking `inspect` runs on a thread. Any exception it raises is a backend that
cannot answer: `BackendUnavailable("backend_error")`, whose detail names the exception's class
but never quotes its message (which may hold a secret), unless it is tdb's own
`BackendUnavailable(reason, detail)`, which a plug-in may choose to import.
"""

from __future__ import annotations

import inspect as inspection
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from itertools import islice
from typing import Any

import anyio.to_thread

from adapters.connectors.registry import StaticConnectorRegistry
from application.ports import Connector
from domain.connections import (
    BACKEND_REASONS,
    ConnectionField,
    ConnectorLoadFailure,
    check_connection,
)
from domain.errors import BackendUnavailable
from domain.sources import MAX_COLUMNS, Column

GROUP = "tdb.connectors"
LOG = logging.getLogger("tdb.connectors")
# JSON Schema types a plug-in's field may have, as the Python types values are checked with.
FIELD_TYPES: Mapping[str, type] = {"string": str, "integer": int, "boolean": bool, "number": float}
_ABSENT = object()


def _read(item: Any, name: str, default: Any = _ABSENT) -> Any:
    """`item.name`, or `item[name]` for a mapping; `default` if it has neither."""
    found = item.get(name, default) if isinstance(item, Mapping) else getattr(item, name, default)
    if found is _ABSENT:
        raise TypeError(f"has no {name!r}")
    return found


def declared_field(item: Any) -> ConnectionField:
    """One of a plug-in's field declarations as a `ConnectionField`; `TypeError` saying what
    is wrong with it."""
    name = _read(item, "name")
    if not isinstance(name, str) or not name:
        raise TypeError("a field's name must be a non-empty string")
    kind = _read(item, "type")
    if kind not in FIELD_TYPES:
        raise TypeError(f"field {name!r}: type must be one of {', '.join(FIELD_TYPES)}")
    description = _read(item, "description", "")
    required, secret = _read(item, "required", False), _read(item, "secret", False)
    default = _read(item, "default", None)
    if not isinstance(description, str):
        raise TypeError(f"field {name!r}: description must be text")
    if not isinstance(required, bool) or not isinstance(secret, bool):
        raise TypeError(f"field {name!r}: required and secret must be booleans")
    python_type = FIELD_TYPES[kind]
    field = ConnectionField(
        name,
        type=python_type,
        required=required,
        default=default,
        secret=secret,
        allow_empty=secret,
        description=description,
    )
    if default is not None and field.errors(default):
        raise TypeError(f"field {name!r}: its default is not a {kind}")
    return field


def declared_fields(plugin: Any) -> tuple[ConnectionField, ...]:
    """The plug-in's fields; `TypeError` if they are not a sequence of declarations."""
    items = _read(plugin, "fields")
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
        raise TypeError("fields must be a sequence of field declarations")
    fields = tuple(declared_field(item) for item in items)
    names = [f.name for f in fields]
    if len(names) != len(set(names)):
        raise TypeError("two fields have one name")
    return fields


class PluginConnector:
    """A plug-in's class, constructed, seen through the `Connector` port."""

    origin = "plugin"

    def __init__(self, source_type: str, plugin: Any, package: str | None = None) -> None:
        title = _read(plugin, "title")
        if not isinstance(title, str) or not title:
            raise TypeError("title must be non-empty text")
        run = _read(plugin, "inspect")
        if not callable(run):
            raise TypeError("inspect must be callable")
        self.source_type = source_type
        self.title = title
        self.package = package
        self.fields: Sequence[ConnectionField] = declared_fields(plugin)
        self._run: Callable[[dict[str, Any]], Any] = run
        self._awaited = inspection.iscoroutinefunction(run)

    async def validate(self, connection: Mapping[str, Any]) -> dict[str, Any]:
        return check_connection(self.fields, connection)

    async def check(self, connection: Mapping[str, Any]) -> None:
        await self.inspect(connection)

    async def forget(self, connection: Mapping[str, Any]) -> None:
        """A plug-in keeps nothing tdb knows of."""

    async def inspect(self, connection: Mapping[str, Any]) -> Sequence[Column]:
        given = check_connection(self.fields, connection)
        try:
            if self._awaited:
                answer = await self._run(given)
            else:
                answer = await anyio.to_thread.run_sync(self._run, given, abandon_on_cancel=True)
                if inspection.isawaitable(answer):
                    answer = await answer
            return self._columns(answer)
        except BackendUnavailable as exc:
            if exc.reason in BACKEND_REASONS:
                raise
            raise BackendUnavailable("backend_error", exc.detail) from None
        except Exception as exc:
            raise BackendUnavailable(
                "backend_error",
                f"the {self.source_type} connector failed ({type(exc).__name__})",
            ) from None

    def _columns(self, answer: Any) -> list[Column]:
        if isinstance(answer, str | bytes | Mapping) or not isinstance(answer, Iterable):
            raise BackendUnavailable(
                "backend_error", f"the {self.source_type} connector answered with no column list"
            )
        items = list(islice(answer, MAX_COLUMNS + 1))
        if len(items) > MAX_COLUMNS:
            raise BackendUnavailable(
                "too_many_columns",
                f"more than {MAX_COLUMNS} columns; at most {MAX_COLUMNS} are read",
            )
        columns = []
        for item in items:
            name, kind = _read(item, "name", None), _read(item, "type", None)
            nullable = _read(item, "nullable", None)
            if not (isinstance(name, str) and name and isinstance(kind, str) and kind) or not (
                nullable is None or isinstance(nullable, bool)
            ):
                raise BackendUnavailable(
                    "backend_error",
                    f"the {self.source_type} connector answered with a column that has no text"
                    " name and type, or a nullable that is not a boolean",
                )
            columns.append(Column(name, kind, nullable))
        return columns


def _package(entry: EntryPoint) -> str | None:
    dist = entry.dist
    return None if dist is None else f"{dist.name}=={dist.version}"


def _failure(entry: EntryPoint, error: str) -> ConnectorLoadFailure:
    failure = ConnectorLoadFailure(
        entry.name, f"{entry.name} = {entry.value}", _package(entry), error
    )
    LOG.error(
        "connector plug-in not loaded: %s (%s): %s",
        failure.entry_point,
        failure.package or "unknown package",
        error,
    )
    return failure


def _loaded(entry: EntryPoint) -> PluginConnector:
    """The plug-in of this entry point, imported, constructed and adapted."""
    plugin_class = entry.load()
    return PluginConnector(entry.name, plugin_class(), _package(entry))


def load_connectors(
    builtins: Iterable[Connector],
    enabled: Collection[str] | None = None,
    found: Iterable[EntryPoint] | None = None,
) -> StaticConnectorRegistry:
    """The built-in connectors and the plug-ins of `found` (the installed entry points of the
    group `tdb.connectors` by default), only the types in `enabled` if given.

    A plug-in that fails to import or construct, or whose type is taken (by a built-in, or by
    a plug-in loaded before it), is left out: one error line on the `tdb.connectors` logger,
    and a `ConnectorLoadFailure` in the registry's `failures()`. A type in `enabled` that no
    connector has is a failure too. Plug-ins are loaded in order of type, then entry point.
    """
    wanted = None if enabled is None else set(enabled)
    connectors = [c for c in builtins if wanted is None or c.source_type in wanted]
    taken = {c.source_type for c in builtins}
    failures: list[ConnectorLoadFailure] = []
    entries = entry_points(group=GROUP) if found is None else found
    seen = set(taken)
    for entry in sorted(entries, key=lambda e: (e.name, e.value)):
        seen.add(entry.name)
        if wanted is not None and entry.name not in wanted:
            continue
        if entry.name in taken:
            owner = (
                "a built-in connector"
                if entry.name in {c.source_type for c in builtins}
                else "another plug-in"
            )
            failures.append(_failure(entry, f"source type {entry.name!r} is taken by {owner}"))
            continue
        try:
            connectors.append(_loaded(entry))
        except Exception as exc:
            failures.append(_failure(entry, f"{type(exc).__name__}: {exc}"))
            continue
        taken.add(entry.name)
    for name in sorted((wanted or set()) - seen):
        failures.append(
            ConnectorLoadFailure(name, "", None, "named in TDB_CONNECTORS, but no connector has it")
        )
        LOG.error("connector %r named in TDB_CONNECTORS is not installed", name)
    return StaticConnectorRegistry(connectors, failures)
