"""The OpenAPI document's shared parts: the Bearer scheme and the documented error responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar import Response, Router, get
from litestar.exceptions import NotFoundException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Discriminator,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
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
from domain.sources import DESCRIPTION_MAX, NAME_MAX, TAG_MAX, TAGS_MAX
from entrypoints.presenters import Problem
from entrypoints.requests import ConnectionTestRequest, RegisterSourceRequest

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

BEARER = "BearerToken"
# Not blank, no control or bidirectional control character: the domain's rule for names, as
# far as a pattern says it (it does not say "some character is visible").
_NOT_IN_NAMES = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
NAME_PATTERN = rf"^[^{_NOT_IN_NAMES}]*[^\s{_NOT_IN_NAMES}][^{_NOT_IN_NAMES}]*$"

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


def openapi_config() -> OpenAPIConfig:
    """Title, version, Bearer authentication on every route that does not opt out, and what is
    served under /schema: the JSON document and one Swagger UI (at /schema and /schema/swagger),
    whose scripts come from this server.
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
        pattern=NAME_PATTERN,
    )


def _description_schema() -> Schema:
    return Schema(type=[OpenAPIType.STRING, OpenAPIType.NULL], max_length=DESCRIPTION_MAX)


def _tags_schema() -> Schema:
    return Schema(
        type=[OpenAPIType.ARRAY, OpenAPIType.NULL],
        items=Schema(type=OpenAPIType.STRING, min_length=1, max_length=TAG_MAX),
        max_items=TAGS_MAX,
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


@dataclass
class MergePatchOperation(Operation):
    """An operation whose body is a JSON Merge Patch, read by the handler itself."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                media: OpenAPIMediaType(schema=_patch_schema()) for media in PATCH_MEDIA_TYPES
            },
            required=True,
        )


def _field_schema(field: ConnectionField) -> Schema:
    kind = {bool: OpenAPIType.BOOLEAN, int: OpenAPIType.INTEGER}.get(field.type, OpenAPIType.STRING)
    return Schema(
        # An optional field may also be given as null, which means "not given".
        type=kind if field.required else [kind, OpenAPIType.NULL],
        minimum=field.min_value,
        maximum=field.max_value,
        min_length=1 if kind is OpenAPIType.STRING and not field.allow_empty else None,
        enum=[*field.choices, *([] if field.required else [None])] if field.choices else None,
        default=field.default,
        description=(
            "A secret: stored encrypted, shown as ******** without sources:secrets."
            if field.secret
            else None
        ),
    )


def connection_schema(connector: Connector) -> Schema:
    """The connection object a connector takes, from its field declarations."""
    return Schema(
        type=OpenAPIType.OBJECT,
        properties={field.name: _field_schema(field) for field in connector.fields},
        required=[field.name for field in connector.fields if field.required] or None,
        additional_properties=False,
    )


class SourceBodySchema(OpenAPISchemaPlugin):
    """Documents the registration and connection-test bodies as one shape per connector of this
    build, so the document names the source types the connectors declare."""

    def __init__(self, connectors: ConnectorRegistry) -> None:
        self._connectors = connectors

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
                        "connection": connection_schema(connector),
                        "description": Schema(
                            type=[OpenAPIType.STRING, OpenAPIType.NULL],
                            max_length=DESCRIPTION_MAX,
                            default="" if registering else None,
                        ),
                        "tags": Schema(
                            type=[OpenAPIType.ARRAY, OpenAPIType.NULL],
                            items=Schema(type=OpenAPIType.STRING, min_length=1, max_length=TAG_MAX),
                            max_items=TAGS_MAX,
                            default=[] if registering else None,
                        ),
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
