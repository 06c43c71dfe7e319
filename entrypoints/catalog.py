"""The catalogue's shape, shared by `GET /v1/connectors` and `tdb connectors list`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from application.ports import Connector
from domain.connections import ConnectionField, ConnectorLoadFailure

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_JSON_TYPES = {str: "string", int: "integer", bool: "boolean", float: "number"}


def field_schema(field: ConnectionField) -> dict[str, Any]:
    """One connection field as a JSON Schema 2020-12 property."""
    kind = _JSON_TYPES.get(field.type, "string")
    schema: dict[str, Any] = {"type": kind if field.required else [kind, "null"]}
    if field.description:
        schema["description"] = field.description
    if field.default is not None:
        schema["default"] = field.default
    if field.choices is not None:
        schema["enum"] = [*field.choices, *([] if field.required else [None])]
    if field.min_value is not None:
        schema["minimum"] = field.min_value
    if field.max_value is not None:
        schema["maximum"] = field.max_value
    if kind == "string" and not field.allow_empty:
        schema["minLength"] = 1
    if field.secret:
        schema["writeOnly"] = True
    return schema


def connection_schema(connector: Connector) -> dict[str, Any]:
    """The connection object a connector takes, as a JSON Schema 2020-12 document."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": f"{connector.title} connection",
        "type": "object",
        "properties": {field.name: field_schema(field) for field in connector.fields},
        "required": [field.name for field in connector.fields if field.required],
        "additionalProperties": False,
    }


def connector_out(connector: Connector) -> dict[str, Any]:
    """One entry of the catalogue."""
    return {
        "source_type": connector.source_type,
        "title": connector.title,
        "origin": connector.origin,
        "package": connector.package,
        "connection_schema": connection_schema(connector),
    }


def failure_out(failure: ConnectorLoadFailure) -> dict[str, Any]:
    """A plug-in that was not loaded, as `tdb connectors list --json` shows it."""
    return {
        "source_type": failure.source_type,
        "entry_point": failure.entry_point,
        "package": failure.package,
        "error": failure.error,
    }


class ConnectorOut(msgspec.Struct):
    """One source type this server can register."""

    source_type: str
    title: str
    origin: Annotated[
        Literal["builtin", "plugin"],
        Meta(description="builtin, or plugin for one an installed distribution brought"),
    ]
    package: Annotated[
        str | None, Meta(description="name==version of a plug-in's distribution; null if built in")
    ]
    connection_schema: Annotated[
        dict[str, Any],
        Meta(
            description="The connection object, as a JSON Schema 2020-12 document; a secret"
            " field is writeOnly"
        ),
    ]

    @classmethod
    def of(cls, connector: Connector) -> ConnectorOut:
        return cls(**connector_out(connector))
