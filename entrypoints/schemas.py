"""The JSON Schemas of the source request bodies (`entrypoints/requests.py`), for every surface
that shows them: the OpenAPI document's request bodies and the MCP tools' inputs are made here,
from the same declarations, so the two cannot say different things.

A schema is plain JSON (dicts and lists): the MCP server uses no web framework, and the OpenAPI
document turns these into its own model objects. A registration or connection-test body is one
shape per connector of the build (its `source_type` and its connection fields); the closed sets
of values those fields take are models of their own, named by `$ref` to `#/components/schemas/`
(`resolved` writes them out in place, for a schema that stands alone).
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from application.ports import ConnectorRegistry
from domain.connections import ConnectionField
from domain.sources import DESCRIPTION_MAX, NAME_MAX, TAG_MAX, TAGS_MAX, visible
from entrypoints.requests import ConnectionTestRequest, RegisterSourceRequest

JsonSchema = dict[str, Any]

COMPONENTS = "#/components/schemas/"

# Not blank, no control or bidirectional control character: the domain's rule for names, as
# far as a pattern says it (it does not say "some character is visible").
_NOT_IN_NAMES = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# A tag: no control or bidirectional control character either.
TAG_PATTERN = rf"^[^{_NOT_IN_NAMES}]*$"
# A description holds anything a store can keep: no NUL.
DESCRIPTION_PATTERN = r"^[^\x00]*$"

# The PATCH body's one model, which both of its media types name.
PATCH_COMPONENT = "SourcePatch"


def _escaped(code: int) -> str:
    # \uXXXX reads the same in Python's and ECMAScript's patterns; beyond the BMP neither
    # reads the other's escape, so those characters are written as they are.
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


@functools.cache
def name_pattern() -> str:
    """The domain's rule for names, as a pattern: no control or bidirectional control
    character, and at least one character that shows (`domain.sources.visible`, which the
    pattern lists by code point). Made once per process, when first asked (about 150 ms)."""
    ranges = []
    start: int | None = None
    for code in range(sys.maxunicode + 1):
        if visible(chr(code)):
            if start is None:
                start = code
        elif start is not None:
            ranges.append((start, code - 1))
            start = None
    if start is not None:
        ranges.append((start, sys.maxunicode))
    shows = "".join(_escaped(a) if a == b else f"{_escaped(a)}-{_escaped(b)}" for a, b in ranges)
    return rf"^[^{_NOT_IN_NAMES}]*[{shows}][^{_NOT_IN_NAMES}]*$"


def name_schema() -> JsonSchema:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": NAME_MAX,
        "description": "Unique (compared in Unicode NFC); at least one visible character;"
        " no control or bidirectional control characters",
        "pattern": name_pattern(),
    }


def description_schema(default: str | None = None) -> JsonSchema:
    schema: JsonSchema = {
        "type": ["string", "null"],
        "maxLength": DESCRIPTION_MAX,
        "pattern": DESCRIPTION_PATTERN,
    }
    if default is not None:
        schema["default"] = default
    return schema


def tag_schema() -> JsonSchema:
    """One tag."""
    return {"type": "string", "minLength": 1, "maxLength": TAG_MAX}


def tags_schema(default: list[str] | None = None) -> JsonSchema:
    """A body's tags: distinct, with no control character (a filter's may be anything)."""
    schema: JsonSchema = {
        "type": ["array", "null"],
        "items": {**tag_schema(), "pattern": TAG_PATTERN},
        "maxItems": TAGS_MAX,
        "uniqueItems": True,
    }
    if default is not None:
        schema["default"] = default
    return schema


def patch_schema() -> JsonSchema:
    """A source's merge patch (`entrypoints.requests.decode_patch`)."""
    return {
        "type": "object",
        "title": "A JSON Merge Patch of a source (RFC 7396)",
        "description": "Only the fields given change; `tags` replaces the list; null returns"
        " `description` and `tags` to their defaults. Any other field of the record is"
        " read-only (400).",
        "properties": {
            "name": name_schema(),
            "description": description_schema(),
            "tags": tags_schema(),
            "connection": {
                "type": "object",
                "description": "Merged field by field, then validated by the source's connector"
                " as at registration: null returns an optional field to its default; a secret"
                " left out or sent back as ******** keeps its stored value.",
            },
        },
        "additionalProperties": False,
    }


def _field_schema(source_type: str, field: ConnectionField, components: JsonSchema) -> JsonSchema:
    kind = {bool: "boolean", int: "integer", float: "number"}.get(field.type, "string")
    extra: JsonSchema = {}
    if field.secret:
        extra["description"] = (
            "A secret: stored encrypted, shown as ******** without sources:secrets"
            " (the MCP tools always mask it)."
        )
    elif field.description:
        extra["description"] = field.description
    if field.choices:
        # A closed set of values is one model (`PostgresSslmode`), whichever body names it.
        name = f"{source_type.capitalize()}{field.name.title().replace('_', '')}"
        components[name] = {"type": kind, "enum": list(field.choices)}
        if field.required:
            return {"$ref": COMPONENTS + name}
        default = {} if field.default is None else {"default": field.default}
        return {"oneOf": [{"$ref": COMPONENTS + name}, {"type": "null"}], **default, **extra}
    schema: JsonSchema = {
        # An optional field may also be given as null, which means "not given".
        "type": kind if field.required else [kind, "null"],
    }
    if field.min_value is not None:
        schema["minimum"] = field.min_value
    if field.max_value is not None:
        schema["maximum"] = field.max_value
    if kind == "string" and not field.allow_empty:
        schema["minLength"] = 1
    if field.default is not None:
        schema["default"] = field.default
    return {**schema, **extra}


def connection_schema(
    connectors: ConnectorRegistry, source_type: str, components: JsonSchema
) -> JsonSchema:
    """The connection object a connector takes, from its field declarations; the models it
    names (closed sets of values) go to `components`."""
    fields = connectors.get(source_type).fields
    schema: JsonSchema = {
        "type": "object",
        "properties": {f.name: _field_schema(source_type, f, components) for f in fields},
        "additionalProperties": False,
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


def source_body_schema(
    request_type: type[RegisterSourceRequest] | type[ConnectionTestRequest],
    connectors: ConnectorRegistry,
    components: JsonSchema,
) -> JsonSchema:
    """A registration's (or a connection test's) body: one shape per connector of this build,
    told apart by `source_type`; the models they name go to `components`."""
    registering = request_type is RegisterSourceRequest
    shapes = []
    for source_type in connectors.types():
        name = name_schema()
        if not registering:
            name["type"] = ["string", "null"]
        shapes.append(
            {
                "type": "object",
                "title": f"{'Register' if registering else 'Test'} a {source_type} source",
                "properties": {
                    "name": name,
                    "source_type": {"type": "string", "enum": [source_type]},
                    "connection": connection_schema(connectors, source_type, components),
                    "description": description_schema("" if registering else None),
                    "tags": tags_schema([] if registering else None),
                },
                "required": ["name", "source_type", "connection"]
                if registering
                else ["source_type", "connection"],
                "additionalProperties": False,
            }
        )
    return {"oneOf": shapes, "discriminator": {"propertyName": "source_type"}}


def resolved(schema: Any, components: JsonSchema) -> Any:
    """The schema with every `$ref` to a component written out in its place."""
    if isinstance(schema, list):
        return [resolved(item, components) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(COMPONENTS):
        return resolved(components[ref.removeprefix(COMPONENTS)], components)
    return {key: resolved(value, components) for key, value in schema.items()}
