"""The JSON Schemas of the MCP tools: what each takes and what it answers.

What a tool answers is one of the API's JSON shapes (`entrypoints/presenters.py`, the types the
OpenAPI document shows), or a page of them; its schema is msgspec's for those very types. What a
tool takes is the route's query, path and body in one object: the body's fields as the domain
bounds them, and a connection as its connector declares its fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from application.ports import ConnectorRegistry
from domain.columns import PATTERN_MAX
from domain.connections import ConnectionField
from domain.events import Action
from domain.sources import DESCRIPTION_MAX, NAME_MAX, TAG_MAX, TAGS_MAX

JsonSchema = dict[str, Any]


def output_schema(shape: type[msgspec.Struct]) -> JsonSchema:
    """The schema of a tool's answer: the shape's own (an object), the shapes it names in
    `$defs`."""
    (ref,), components = msgspec.json.schema_components([shape], ref_template="#/$defs/{name}")
    name = ref["$ref"].rsplit("/", 1)[1]
    schema: JsonSchema = dict(components.pop(name))
    if components:
        schema["$defs"] = components
    return schema


def tool_input(properties: JsonSchema, required: Sequence[str] = ()) -> JsonSchema:
    """A tool's arguments: these properties, no other."""
    schema: JsonSchema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


SOURCE_ID: JsonSchema = {"type": "string", "format": "uuid", "description": "The source's id"}
LIMIT: JsonSchema = {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Page size"}
CURSOR: JsonSchema = {
    "type": "string",
    "description": "Opaque: the `next_cursor` of the previous page (the HTTP API's cursors too)",
}
IF_MATCH: JsonSchema = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "description": "The version the change is meant for"},
        {"const": "*", "description": "Any version, if the source exists"},
    ],
    "description": "Required: the source's `version` as read (a change made since is refused,"
    " 412), or `*`",
}
VERIFY: JsonSchema = {
    "type": "boolean",
    "default": False,
    "description": "Test the connection first; if the test fails refuse (422) and store nothing",
}
NAME: JsonSchema = {
    "type": "string",
    "minLength": 1,
    "maxLength": NAME_MAX,
    "description": "Unique (compared in Unicode NFC); at least one visible character",
}
DESCRIPTION: JsonSchema = {"type": ["string", "null"], "maxLength": DESCRIPTION_MAX}
TAGS: JsonSchema = {
    "type": ["array", "null"],
    "items": {"type": "string", "minLength": 1, "maxLength": TAG_MAX},
    "maxItems": TAGS_MAX,
    "uniqueItems": True,
}
PATTERN: JsonSchema = {
    "type": "string",
    "minLength": 1,
    "maxLength": PATTERN_MAX,
    "description": "Case-insensitive; `*` stands for any run of characters",
}
ACTION: JsonSchema = {"type": "string", "enum": [a.value for a in Action]}

_KINDS = {bool: "boolean", int: "integer"}


def _field(field: ConnectionField) -> JsonSchema:
    kind = _KINDS.get(field.type, "string")
    schema: JsonSchema = {"type": kind if field.required else [kind, "null"]}
    if field.choices:
        schema["enum"] = [*field.choices, *([] if field.required else [None])]
    if field.min_value is not None:
        schema["minimum"] = field.min_value
    if field.max_value is not None:
        schema["maximum"] = field.max_value
    if kind == "string" and not field.allow_empty:
        schema["minLength"] = 1
    if field.default is not None:
        schema["default"] = field.default
    if field.secret:
        schema["description"] = "A secret: stored encrypted, never shown (********) over MCP"
    return schema


def source_body(connectors: ConnectorRegistry) -> JsonSchema:
    """A registration's arguments: one shape per connector of this build, as in the OpenAPI
    document's request body."""
    shapes = []
    for source_type in connectors.types():
        fields = connectors.get(source_type).fields
        connection = tool_input(
            {f.name: _field(f) for f in fields}, [f.name for f in fields if f.required]
        )
        shapes.append(
            tool_input(
                {
                    "name": NAME,
                    "source_type": {"const": source_type},
                    "connection": connection,
                    "description": DESCRIPTION,
                    "tags": TAGS,
                    "verify": VERIFY,
                },
                ["name", "source_type", "connection"],
            )
        )
    return {"type": "object", "oneOf": shapes}


PATCH: JsonSchema = tool_input(
    {
        "name": NAME,
        "description": DESCRIPTION,
        "tags": TAGS,
        "connection": {
            "type": "object",
            "description": "Merged field by field, then validated by the source's connector:"
            " null returns an optional field to its default; a secret left out or sent back as"
            " ******** keeps its stored value",
        },
    }
)
PATCH["description"] = "A JSON Merge Patch (RFC 7396) of the source: only the fields given change"
