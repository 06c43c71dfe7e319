"""The OpenAPI document's shared parts: the Bearer scheme and the documented error responses."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Discriminator,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.params import FromPath
from litestar.plugins import OpenAPISchemaPlugin
from litestar.response import File
from litestar.typing import FieldDefinition
from swagger_ui_bundle import swagger_ui_path

from application.ports import Connector, ConnectorRegistry
from domain.connections import ConnectionField
from domain.sources import DESCRIPTION_MAX, NAME_MAX, TAG_MAX, TAGS_MAX, visible
from entrypoints.presenters import Problem
from entrypoints.requests import ConnectionTestRequest, RegisterSourceRequest

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

BEARER = "BearerToken"
# Not blank, no control or bidirectional control character: the domain's rule for names, as
# far as a pattern says it (it does not say "some character is visible").
_NOT_IN_NAMES = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# A tag: no control or bidirectional control character either.
TAG_PATTERN = rf"^[^{_NOT_IN_NAMES}]*$"
# A description holds anything a store can keep: no NUL.
DESCRIPTION_PATTERN = r"^[^\x00]*$"


def _escaped(code: int) -> str:
    # \uXXXX reads the same in Python's and ECMAScript's patterns; beyond the BMP neither
    # reads the other's escape, so those characters are written as they are.
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


@functools.cache
def name_pattern() -> str:
    """The domain's rule for names, as a pattern: no control or bidirectional control
    character, and at least one character that shows (`domain.sources.visible`, which the
    pattern lists by code point)."""
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


_MEANINGS = {
    400: "Invalid input: malformed JSON, wrong types, unknown source_type or bad connection fields",
    401: "Missing, malformed, unknown or revoked API key",
    403: "The API key lacks the scope this operation needs",
    404: "Source ID not found",
    409: "A source with this name already exists",
    412: "If-Match names a version the source no longer has; `current_version` says which it has",
    413: "Request body larger than 64 KiB",
    415: "The body is not sent as application/json (PATCH: or application/merge-patch+json)",
    422: "verify=true and the connection test failed (see `reason`, `detail`); nothing was stored",
    503: "The store, or the source's backend, is unreachable (see `reason`)",
}


def responses(*statuses: int) -> dict[int, ResponseSpec]:
    """Problem+json responses for these status codes."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_MEANINGS[status],
            media_type="application/problem+json",
            generate_examples=False,
        )
        for status in statuses
    }


SCHEMA_PATH = "/schema"
ASSETS = f"{SCHEMA_PATH}/swagger/assets"
# The Swagger UI files the page loads, served from the installed bundle: nothing from a CDN.
_ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


@get("/swagger/assets/{name:str}", sync_to_thread=False, include_in_schema=False)
def swagger_asset(name: FromPath[str]) -> File:
    if name not in _ASSET_TYPES:
        raise NotFoundException()
    return File(
        path=str(swagger_ui_path / name),
        filename=name,
        media_type=_ASSET_TYPES[name],
        content_disposition_type="inline",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def _problem_not_found(response: Response[Any]) -> Response[Any]:
    # Litestar answers unknown paths under the schema router with an HTML page of its own.
    if response.status_code == 404 and response.media_type != "application/problem+json":
        raise NotFoundException()
    return response


def openapi_config(polisher: Polisher) -> OpenAPIConfig:
    """Title, version, Bearer authentication on every route that does not opt out, and what is
    served under /schema: the JSON document (made ready by `polisher` before it is first served)
    and one Swagger UI (at /schema and /schema/swagger), whose scripts come from this server.
    """
    return OpenAPIConfig(
        path=SCHEMA_PATH,
        render_plugins=[
            SwaggerRenderPlugin(
                path=["/", "/swagger"],
                js_url=f"{ASSETS}/swagger-ui-bundle.js",
                css_url=f"{ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
            ),
            JsonRenderPlugin(),
        ],
        openapi_router=Router(
            SCHEMA_PATH,
            route_handlers=[swagger_asset],
            include_in_schema=False,
            before_request=polisher,
            after_request=_problem_not_found,
        ),
        title="tdb source registry",
        version="1.0.0",
        description="A registry of data sources: register, list, get, delete, inspect schemas.",
        security=[{BEARER: []}],
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An API key: `tdbk_<key_id>_<secret>`",
                )
            }
        ),
    )


PATCH_MEDIA_TYPES = ("application/merge-patch+json", "application/json")


def _name_schema() -> Schema:
    return Schema(
        type=OpenAPIType.STRING,
        min_length=1,
        max_length=NAME_MAX,
        description=(
            "Unique (compared in Unicode NFC); at least one visible character;"
            " no control or bidirectional control characters"
        ),
        pattern=name_pattern(),
    )


def _description_schema(default: str | None = None) -> Schema:
    return Schema(
        type=[OpenAPIType.STRING, OpenAPIType.NULL],
        max_length=DESCRIPTION_MAX,
        pattern=DESCRIPTION_PATTERN,
        default=default,
    )


def tag_schema() -> Schema:
    """One tag."""
    return Schema(type=OpenAPIType.STRING, min_length=1, max_length=TAG_MAX)


def _tags_schema(default: list[str] | None = None) -> Schema:
    """A body's tags: distinct, with no control character (a filter's may be anything)."""
    items = tag_schema()
    items.pattern = TAG_PATTERN
    return Schema(
        type=[OpenAPIType.ARRAY, OpenAPIType.NULL],
        items=items,
        max_items=TAGS_MAX,
        unique_items=True,
        default=default,
    )


def _patch_schema() -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        title="A JSON Merge Patch of a source (RFC 7396)",
        description=(
            "Only the fields given change; `tags` replaces the list; null returns `description`"
            " and `tags` to their defaults. Any other field of the record is read-only (400)."
        ),
        properties={
            "name": _name_schema(),
            "description": _description_schema(),
            "tags": _tags_schema(),
            "connection": Schema(
                type=OpenAPIType.OBJECT,
                description=(
                    "Merged field by field, then validated by the source's connector as at"
                    " registration: null returns an optional field to its default; a secret"
                    " left out or sent back as ******** keeps its stored value."
                ),
            ),
        },
        additional_properties=False,
    )


# The PATCH body's one model, which both of its media types name.
PATCH_COMPONENT = "SourcePatch"


def _component(name: str) -> Reference:
    return Reference(ref=f"#/components/schemas/{name}")


# The merge-patch bodies' models, by component name: each is one model that both media types of
# its operation name, so a client generator makes one model, not one per media type.
_MERGE_PATCH_COMPONENTS: dict[str, Callable[[], Schema]] = {}


def merge_patch_body(component: str, schema: Callable[[], Schema]) -> RequestBody:
    """A JSON Merge Patch body taken as either of `PATCH_MEDIA_TYPES`: both name the model
    `component`, which `polish` adds to the document as `schema()` makes it."""
    _MERGE_PATCH_COMPONENTS[component] = schema
    return RequestBody(
        content={
            media: OpenAPIMediaType(schema=_component(component)) for media in PATCH_MEDIA_TYPES
        },
        required=True,
    )


@dataclass
class MergePatchOperation(Operation):
    """An operation whose body is a JSON Merge Patch of a source, read by the handler itself."""

    def __post_init__(self) -> None:
        self.request_body = merge_patch_body(PATCH_COMPONENT, _patch_schema)


def _field_schema(
    source_type: str, field: ConnectionField, components: dict[str, Schema]
) -> Schema | Reference:
    kind = {
        bool: OpenAPIType.BOOLEAN,
        int: OpenAPIType.INTEGER,
        float: OpenAPIType.NUMBER,
    }.get(field.type, OpenAPIType.STRING)
    description = (
        "A secret: stored encrypted, shown as ******** without sources:secrets."
        if field.secret
        else field.description or None
    )
    if field.choices:
        # A closed set of values is one model (`PostgresSslmode`), whichever body names it.
        name = f"{source_type.capitalize()}{field.name.title().replace('_', '')}"
        components[name] = Schema(type=kind, enum=list(field.choices))
        if field.required:
            return _component(name)
        return Schema(
            one_of=[_component(name), Schema(type=OpenAPIType.NULL)],
            default=field.default,
            description=description,
        )
    return Schema(
        # An optional field may also be given as null, which means "not given".
        type=kind if field.required else [kind, OpenAPIType.NULL],
        minimum=field.min_value,
        maximum=field.max_value,
        min_length=1 if kind is OpenAPIType.STRING and not field.allow_empty else None,
        default=field.default,
        description=description,
    )


def connection_schema(
    connector: Connector, source_type: str, components: dict[str, Schema]
) -> Schema:
    """The connection object a connector takes, from its field declarations; the models it
    names (closed sets of values) go to `components`."""
    return Schema(
        type=OpenAPIType.OBJECT,
        properties={
            field.name: _field_schema(source_type, field, components) for field in connector.fields
        },
        required=[field.name for field in connector.fields if field.required] or None,
        additional_properties=False,
    )


class SourceBodySchema(OpenAPISchemaPlugin):
    """Documents the registration and connection-test bodies as one shape per connector of this
    build, so the document names the source types the connectors declare."""

    def __init__(self, connectors: ConnectorRegistry) -> None:
        self._connectors = connectors
        # The models the bodies name, for the document's components (`polish`).
        self.components: dict[str, Schema] = {}

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is RegisterSourceRequest or value is ConnectionTestRequest

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        registering = field_definition.annotation is RegisterSourceRequest
        shapes = []
        for source_type in self._connectors.types():
            connector = self._connectors.get(source_type)
            shapes.append(
                Schema(
                    type=OpenAPIType.OBJECT,
                    title=f"{'Register' if registering else 'Test'} a {source_type} source",
                    properties={
                        "name": _name_schema() if registering else _optional(_name_schema()),
                        "source_type": Schema(type=OpenAPIType.STRING, enum=[source_type]),
                        "connection": connection_schema(connector, source_type, self.components),
                        "description": _description_schema("" if registering else None),
                        "tags": _tags_schema([] if registering else None),
                    },
                    required=["name", "source_type", "connection"]
                    if registering
                    else ["source_type", "connection"],
                    additional_properties=False,
                )
            )
        return Schema(one_of=shapes, discriminator=Discriminator(property_name="source_type"))


def _optional(schema: Schema) -> Schema:
    """The schema, null also allowed (null means "not given")."""
    schema.type = [OpenAPIType.STRING, OpenAPIType.NULL]
    return schema


def _plain(schema: Schema) -> Schema:
    """A query parameter's schema without null: a query value is never null, and a `oneOf`
    that a value matches twice (an array or null) is no schema a client can follow."""
    if schema.one_of is not None:
        kept = [s for s in schema.one_of if not (isinstance(s, Schema) and s.type == "null")]
        if len(kept) == 1 and isinstance(kept[0], Schema):
            # The constraints and words given for the parameter go to the one type left.
            given = {
                f.name: getattr(schema, f.name)
                for f in fields(schema)
                if f.name != "one_of" and getattr(schema, f.name) is not None
            }
            schema = replace(kept[0], **given)
    if isinstance(schema.type, list):
        types = [t for t in schema.type if t is not OpenAPIType.NULL]
        schema.type = types[0] if len(types) == 1 else types
    if schema.type is OpenAPIType.INTEGER:
        # Litestar writes some integer bounds as floats (`1000.0`): one spelling for one bound.
        for bound in ("minimum", "maximum"):
            if isinstance(value := getattr(schema, bound), float):
                setattr(schema, bound, int(value))
    return schema


class Polisher:
    """Polishes (`polish`) the app's document before its first reading, and again if Litestar
    builds it anew: Litestar builds it on the first request for it, not when the app is made,
    and building it (the name pattern above all) would add about 150 ms to every process's start.
    """

    def __init__(self) -> None:
        self._polished: OpenAPI | None = None

    def __call__(self, request: Request[Any, Any, Any]) -> None:
        openapi = request.app.openapi_schema
        if openapi is not self._polished:
            polish(openapi, request.app.plugins.get(SourceBodySchema).components)
            self._polished = openapi


def polish(openapi: OpenAPI, components: dict[str, Schema]) -> None:
    """What Litestar's generated document needs to be one clients can use: the models that
    operations name by reference, query parameters with their plain types, and a schema for
    each response header (OpenAPI 3.1 requires one)."""
    schemas = openapi.components.schemas
    schemas.update(components)
    for component, merge_patch in _MERGE_PATCH_COMPONENTS.items():
        schemas[component] = merge_patch()
    # A query parameter taking one of a model's values names that model (`Action`).
    enums = {
        (schema.type, tuple(schema.enum)): name
        for name, schema in schemas.items()
        if isinstance(schema, Schema) and schema.enum
    }
    for item in (openapi.paths or {}).values():
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation: Operation | None = getattr(item, method)
            if operation is None:
                continue
            for parameter in operation.parameters or ():
                if (
                    isinstance(parameter, Parameter)
                    and parameter.param_in == "query"
                    and isinstance(parameter.schema, Schema)
                ):
                    parameter.schema = plain = _plain(parameter.schema)
                    if plain.enum and (name := enums.get((plain.type, tuple(plain.enum)))):
                        parameter.schema = _component(name)
            for response in (operation.responses or {}).values():
                if not isinstance(response, OpenAPIResponse):
                    continue
                for header in (response.headers or {}).values():
                    if isinstance(header, OpenAPIHeader) and header.schema is None:
                        header.schema = Schema(type=OpenAPIType.STRING)
