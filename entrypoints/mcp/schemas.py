"""The JSON Schemas of the MCP tools: what each takes and what it answers.

What a tool answers is one of the API's JSON shapes (`entrypoints/presenters.py`, the types the
OpenAPI document shows), or a page of them; its schema is msgspec's for those very types. What a
tool takes is the route's query, path and body in one object; a body's schema is the OpenAPI
document's request body, from the same builder (`entrypoints/schemas.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from application.ports import ConnectorRegistry
from domain.columns import PATTERN_MAX
from domain.events import Action
from entrypoints.requests import RegisterSourceRequest
from entrypoints.schemas import JsonSchema, patch_schema, resolved, source_body_schema


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
PATTERN: JsonSchema = {
    "type": "string",
    "minLength": 1,
    "maxLength": PATTERN_MAX,
    "description": "Case-insensitive; `*` stands for any run of characters",
}
ACTION: JsonSchema = {"type": "string", "enum": [a.value for a in Action]}


def source_body(connectors: ConnectorRegistry) -> JsonSchema:
    """A registration's arguments: the OpenAPI document's request body of `POST /v1/sources`
    (the same `entrypoints.schemas` builder, its models written out in place), each shape with
    `verify`, which the HTTP API takes in its query."""
    components: JsonSchema = {}
    body = source_body_schema(RegisterSourceRequest, connectors, components)
    shapes = [
        {**shape, "properties": {**shape["properties"], "verify": VERIFY}}
        for shape in resolved(body["oneOf"], components)
    ]
    return {"type": "object", "oneOf": shapes}


def source_update() -> JsonSchema:
    """An update's arguments; its `patch` is the OpenAPI document's `SourcePatch` model, the
    request body of `PATCH /v1/sources/{id}`."""
    return tool_input(
        {"source_id": SOURCE_ID, "if_match": IF_MATCH, "patch": patch_schema(), "verify": VERIFY},
        ["source_id", "if_match", "patch"],
    )


def completed_inputs(connectors: ConnectorRegistry) -> dict[str, JsonSchema]:
    """The input schemas the tools leave to be made (None in `TOOLS`): those of the request
    bodies, which name this build's connectors. Made when first needed: the name pattern they
    hold takes about 150 ms to build."""
    return {"register_source": source_body(connectors), "update_source": source_update()}
