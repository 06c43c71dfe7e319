"""The connector contract, as checks a connector's own tests run: built-in or plug-in.

A plug-in author's test suite needs nothing but this module and a real source:

    from adapters.connectors.contract import ContractCase, check_plugin

    def test_my_connector_keeps_the_contract(tmp_path):
        make_a_real_table(tmp_path / "db")          # whatever the backend needs
        check_plugin(
            MyConnector,
            source_type="mine",
            minimal={"database": "x", "table": "t"},    # the required fields only
            existing={"database": str(tmp_path / "db"), "table": "items"},
            columns=["sku", "qty"],                     # the existing source's columns, in order
            missing={"database": str(tmp_path / "db"), "table": "no_such_table"},
        )

Each check is also in `CHECKS`, by name, for a suite that wants one test per check (pytest's
`parametrize`). A broken rule raises `ContractViolation` (an `AssertionError`) saying which.
No test framework is needed at run time.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import attrs

from adapters.connectors.plugins import PluginConnector
from application.ports import Connector
from domain.connections import BACKEND_REASONS, ConnectionField
from domain.errors import BackendUnavailable, InvalidConnection
from domain.sources import Column

UNKNOWN_FIELD = "tdb_contract_unknown_field"
_PACKAGE = re.compile(r"[A-Za-z0-9._-]+==\S+")


class ContractViolation(AssertionError):
    """A connector broke a rule of the contract."""


@attrs.frozen
class ContractCase:
    """One connector, and what the contract needs to try it on a real backend."""

    connector: Connector
    minimal: Mapping[str, Any]
    """A connection with the required fields only: validation needs no backend."""
    existing: Mapping[str, Any]
    """A connection to a real source whose columns are `columns`."""
    columns: Sequence[str]
    missing: Mapping[str, Any]
    """A connection to a source that does not exist (a missing table or file)."""


def _require(condition: bool, rule: str) -> None:
    if not condition:
        raise ContractViolation(rule)


async def _invalid_fields(connector: Connector, connection: Any) -> list[str]:
    try:
        await connector.validate(connection)
    except InvalidConnection as exc:
        return [error.field for error in exc.errors]
    raise ContractViolation(f"validate accepted {connection!r}")


async def declares_itself(case: ContractCase) -> None:
    """A type, a title, an origin and its fields, each field once."""
    c = case.connector
    _require(isinstance(c.source_type, str) and bool(c.source_type), "source_type is text")
    _require(isinstance(c.title, str) and bool(c.title), "title is text")
    _require(c.origin in ("builtin", "plugin"), "origin is builtin or plugin")
    _require(c.package is None or bool(_PACKAGE.fullmatch(c.package)), "package is name==version")
    _require(all(isinstance(f, ConnectionField) for f in c.fields), "fields are declared")
    names = [f.name for f in c.fields]
    _require(len(names) == len(set(names)), "each field is declared once")


async def fills_defaults(case: ContractCase) -> None:
    """Validation fills every default, and validating its answer changes nothing."""
    once = await case.connector.validate(dict(case.minimal))
    for field in case.connector.fields:
        if field.default is not None and field.name not in case.minimal:
            _require(once.get(field.name) == field.default, f"{field.name} gets its default")
    _require(await case.connector.validate(once) == once, "validate is idempotent")


async def names_unknown_fields(case: ContractCase) -> None:
    """A field the connector does not declare is refused, by name."""
    connection = {**case.minimal, UNKNOWN_FIELD: "x"}
    fields = await _invalid_fields(case.connector, connection)
    _require(fields == [f"connection.{UNKNOWN_FIELD}"], "an unknown field is named")


async def names_missing_fields(case: ContractCase) -> None:
    """Each required field left out is named."""
    for field in case.connector.fields:
        if field.required:
            connection = {k: v for k, v in case.minimal.items() if k != field.name}
            fields = await _invalid_fields(case.connector, connection)
            _require(fields == [f"connection.{field.name}"], f"missing {field.name} is named")


async def names_mistyped_fields(case: ContractCase) -> None:
    """A value of the wrong JSON type is refused, by its field's name."""
    for field in case.connector.fields:
        connection = {**case.minimal, field.name: [1]}
        fields = await _invalid_fields(case.connector, connection)
        _require(fields == [f"connection.{field.name}"], f"a list as {field.name} is named")


async def refuses_what_is_not_an_object(case: ContractCase) -> None:
    """A connection that is not a JSON object is refused as a whole."""
    candidates: tuple[Any, ...] = (None, [], "x=1", 42)
    for connection in candidates:
        fields = await _invalid_fields(case.connector, connection)
        _require(fields == ["connection"], "a connection that is not an object is refused")


async def reads_a_real_source(case: ContractCase) -> None:
    """The columns of a real source, in order, each with a type and a nullability."""
    connector = case.connector
    columns = await connector.inspect(await connector.validate(dict(case.existing)))
    _require(all(isinstance(c, Column) for c in columns), "inspect answers columns")
    _require([c.name for c in columns] == list(case.columns), "the columns come in order")
    _require(all(isinstance(c.type, str) and c.type for c in columns), "each has a type")
    _require(all(c.nullable in (True, False, None) for c in columns), "nullable is a boolean")
    await connector.check(await connector.validate(dict(case.existing)))


async def says_why_a_source_is_missing(case: ContractCase) -> None:
    """A missing source is `BackendUnavailable` with a reason of the vocabulary, no secret in
    its detail."""
    connector = case.connector
    connection = await connector.validate(dict(case.missing))
    for call in (connector.inspect, connector.check):
        try:
            await call(connection)
        except BackendUnavailable as exc:
            _require(exc.reason in BACKEND_REASONS, f"{exc.reason!r} is a known reason")
            for field in connector.fields:
                value = connection.get(field.name)
                if field.secret and isinstance(value, str) and value:
                    _require(value not in str(exc), f"{field.name} is not quoted")
        else:
            raise ContractViolation(f"{call.__name__} of a missing source answered")


CHECKS: Mapping[str, Callable[[ContractCase], Coroutine[Any, Any, None]]] = {
    check.__name__: check
    for check in (
        declares_itself,
        fills_defaults,
        names_unknown_fields,
        names_missing_fields,
        names_mistyped_fields,
        refuses_what_is_not_an_object,
        reads_a_real_source,
        says_why_a_source_is_missing,
    )
}


def check_connector(case: ContractCase) -> None:
    """Run every check on the case, on an event loop of its own; `ContractViolation` if one
    fails."""

    async def all_checks() -> None:
        for check in CHECKS.values():
            await check(case)

    asyncio.run(all_checks())


def plugin_case(
    plugin_class: type,
    source_type: str,
    minimal: Mapping[str, Any],
    existing: Mapping[str, Any],
    columns: Sequence[str],
    missing: Mapping[str, Any],
) -> ContractCase:
    """A plug-in class as tdb loads it (constructed with no argument, adapted), in a case."""
    try:
        connector = PluginConnector(source_type, plugin_class())
    except Exception as exc:
        raise ContractViolation(
            f"tdb cannot load the plug-in: {type(exc).__name__}: {exc}"
        ) from exc
    return ContractCase(connector, minimal, existing, columns, missing)


def check_plugin(
    plugin_class: type,
    source_type: str,
    minimal: Mapping[str, Any],
    existing: Mapping[str, Any],
    columns: Sequence[str],
    missing: Mapping[str, Any],
) -> None:
    """The whole contract, on a plug-in class as tdb loads it."""
    check_connector(plugin_case(plugin_class, source_type, minimal, existing, columns, missing))
