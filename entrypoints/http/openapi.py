"""The OpenAPI document's shared parts: the Bearer scheme and the documented error responses."""

from __future__ import annotations

import re
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

from application.ports import ConnectorRegistry
from entrypoints import schemas
from entrypoints.presenters import Problem
from entrypoints.requests import ConnectionTestRequest, RegisterSourceRequest
from entrypoints.schemas import (
    DESCRIPTION_PATTERN,
    PATCH_COMPONENT,
    TAG_PATTERN,
    JsonSchema,
    name_pattern,
    patch_schema,
    source_body_schema,
)

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

BEARER = "BearerToken"
# The patterns other routes' parameters and bodies take, as the sources' do.
__all__ = ["DESCRIPTION_PATTERN", "TAG_PATTERN", "name_pattern"]

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


def tag_schema() -> Schema:
    """One tag."""
    return openapi_schema(schemas.tag_schema())


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
        self.request_body = merge_patch_body(
            PATCH_COMPONENT, lambda: openapi_schema(patch_schema())
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
        models: JsonSchema = {}
        body = source_body_schema(field_definition.annotation, self._connectors, models)
        self.components.update({name: openapi_schema(m) for name, m in models.items()})
        return openapi_schema(body)


_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


def openapi_schema(schema: JsonSchema) -> Schema:
    """A JSON Schema (`entrypoints.schemas`) as the document's model object."""
    given: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            value = {name: _model(item) for name, item in value.items()}
        elif key in ("items", "oneOf"):
            value = [_model(v) for v in value] if isinstance(value, list) else _model(value)
        elif key == "discriminator":
            value = Discriminator(property_name=value["propertyName"])
        elif key == "type":
            value = (
                [OpenAPIType(t) for t in value] if isinstance(value, list) else OpenAPIType(value)
            )
        given[_SNAKE.sub("_", key).lower()] = value
    return Schema(**given)


def _model(schema: JsonSchema) -> Schema | Reference:
    if "$ref" in schema:
        return Reference(ref=schema["$ref"])
    return openapi_schema(schema)


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
