"""The Webhooks API: endpoints, their secrets, pings, deliveries and redelivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import ResponseHeader
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import FromPath, Parameter, QueryParameter

from application.deliveries import DELIVERY_LIMIT_DEFAULT, ListDeliveriesQuery, RedeliverCommand
from application.webhooks import (
    CreateWebhookCommand,
    ListWebhooksQuery,
    RotateSecretCommand,
    UpdateWebhookCommand,
    WebhookQuery,
)
from domain.errors import DeliveryNotFound, InvalidInput, WebhookNotFound
from domain.keys import Principal, Scope
from domain.sources import DESCRIPTION_MAX, TAGS_MAX
from domain.webhooks import OVERLAP_MAX, URL_MAX, DeliveryState, event_types
from entrypoints.cursors import decode_delivery_cursor, encode_delivery_cursor
from entrypoints.http.bodies import JSON
from entrypoints.http.openapi import (
    DESCRIPTION_PATTERN,
    PATCH_MEDIA_TYPES,
    TAG_PATTERN,
    merge_patch_body,
    responses,
    tag_schema,
)
from entrypoints.http.query import check_query
from entrypoints.http.use_cases import use_cases
from entrypoints.webhook_requests import (
    RotateRequest,
    WebhookCreateRequest,
    decode_webhook_patch,
)
from entrypoints.webhook_shapes import (
    CreatedWebhookOut,
    DeliveryOut,
    PingAccepted,
    SecretOut,
    WebhookOut,
)

AuthRequest = Request[Principal, str, Any]
SCOPE = {"scope": Scope.WEBHOOKS}


def _fields_schema(required: list[str] | None) -> Schema:
    """The endpoint's fields: `required` at creation; in a patch (None) every one is optional.
    Null, where a field takes it, means "its default"; `url`, `events` and `enabled` have
    none, so they never take null (the server refuses it: 400)."""

    def kind(schema_type: OpenAPIType, nullable: bool = False) -> Any:
        return [schema_type, OpenAPIType.NULL] if nullable else schema_type

    tag = tag_schema()
    tag.pattern = TAG_PATTERN
    properties: dict[str, Schema] = {
        "url": Schema(
            type=kind(OpenAPIType.STRING),
            max_length=URL_MAX,
            description="https://..., or http:// to a loopback address",
        ),
        "events": Schema(
            type=kind(OpenAPIType.ARRAY),
            min_items=1,
            unique_items=True,
            items=Schema(type=OpenAPIType.STRING, enum=list(event_types())),
        ),
        "breaking_only": Schema(type=kind(OpenAPIType.BOOLEAN, True)),
        "source_ids": Schema(
            type=kind(OpenAPIType.ARRAY, True),
            items=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.UUID),
        ),
        "tags": Schema(
            type=kind(OpenAPIType.ARRAY, True), max_items=TAGS_MAX, unique_items=True, items=tag
        ),
        "description": Schema(
            type=kind(OpenAPIType.STRING, True),
            max_length=DESCRIPTION_MAX,
            pattern=DESCRIPTION_PATTERN,
        ),
    }
    if required is None:
        properties["enabled"] = Schema(type=kind(OpenAPIType.BOOLEAN))
    return Schema(
        type=OpenAPIType.OBJECT,
        properties=properties,  # type: ignore[arg-type]
        required=required,
        additional_properties=False,
    )


def _body(schema: Schema, media_types: tuple[str, ...]) -> RequestBody:
    return RequestBody(
        content={media: OpenAPIMediaType(schema=schema) for media in media_types},
        required=True,
    )


@dataclass
class CreateOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = _body(_fields_schema(["url", "events"]), JSON)


def _patch_schema() -> Schema:
    schema = _fields_schema(None)
    schema.title = "A JSON Merge Patch of a webhook endpoint (RFC 7396)"
    schema.description = (
        "Only the fields given change; a list given replaces the list; null returns"
        " `breaking_only`, `source_ids`, `tags` and `description` to their defaults."
    )
    return schema


@dataclass
class PatchOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = merge_patch_body("WebhookPatch", _patch_schema)


@dataclass
class RotateOperation(Operation):
    def __post_init__(self) -> None:
        overlap = Schema(
            type=OpenAPIType.OBJECT,
            properties={
                "overlap_seconds": Schema(
                    type=OpenAPIType.INTEGER, minimum=0, maximum=OVERLAP_MAX, default=86400
                )
            },
            additional_properties=False,
        )
        self.request_body = _body(overlap, JSON)


def _id(raw: str, missing: type[Exception]) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise missing(raw) from None


def _state(raw: str | None) -> DeliveryState | None:
    if raw is None:
        return None
    try:
        return DeliveryState(raw)
    except ValueError:
        known = ", ".join(s.value for s in DeliveryState)
        raise InvalidInput.single("state", f"must be one of {known}") from None


class WebhooksController(Controller):
    """`/v1/webhooks`: endpoints that receive signed events, at least once."""

    path = "/v1/webhooks"
    tags = ["webhooks"]

    @post(
        "/",
        opt={**SCOPE, "media_types": JSON},
        status_code=201,
        summary="Create a webhook endpoint (its secret is shown in this answer only)",
        responses=responses(400, 401, 403, 413, 415, 503),
        response_headers=[
            ResponseHeader(
                name="Location", description="URL of the new endpoint", documentation_only=True
            )
        ],
        operation_class=CreateOperation,
    )
    async def create(self, request: AuthRequest) -> Response[CreatedWebhookOut]:
        check_query(request.query_params)
        fields = WebhookCreateRequest.decode(await request.json()).fields
        created = await use_cases(request).create_webhook(
            CreateWebhookCommand(request.user, fields)
        )
        out = CreatedWebhookOut(
            **{
                f: getattr(WebhookOut.of(created.endpoint), f) for f in WebhookOut.__struct_fields__
            },
            secret=created.secret,
        )
        return Response(
            out, status_code=201, headers={"Location": f"{self.path}/{created.endpoint.id}"}
        )

    @get("/", opt=SCOPE, summary="List webhook endpoints", responses=responses(400, 401, 403, 503))
    async def list_webhooks(self, request: AuthRequest) -> list[WebhookOut]:
        check_query(request.query_params)
        return [
            WebhookOut.of(e)
            for e in await use_cases(request).list_webhooks(ListWebhooksQuery(request.user))
        ]

    @get(
        "/{webhook_id:str}",
        opt=SCOPE,
        summary="Get a webhook endpoint (never its secret)",
        responses=responses(400, 401, 403, 404, 503),
    )
    async def get_webhook(self, request: AuthRequest, webhook_id: FromPath[str]) -> WebhookOut:
        check_query(request.query_params)
        query = WebhookQuery(request.user, _id(webhook_id, WebhookNotFound))
        return WebhookOut.of(await use_cases(request).get_webhook(query))

    @patch(
        "/{webhook_id:str}",
        opt={**SCOPE, "media_types": PATCH_MEDIA_TYPES},
        summary="Update a webhook endpoint with a JSON Merge Patch (RFC 7396)",
        responses=responses(400, 401, 403, 404, 413, 415, 503),
        operation_class=PatchOperation,
    )
    async def update_webhook(self, request: AuthRequest, webhook_id: FromPath[str]) -> WebhookOut:
        check_query(request.query_params)
        ident = _id(webhook_id, WebhookNotFound)
        changes = decode_webhook_patch(await request.json())
        command = UpdateWebhookCommand(request.user, ident, changes)
        return WebhookOut.of(await use_cases(request).update_webhook(command))

    @delete(
        "/{webhook_id:str}",
        opt=SCOPE,
        summary="Delete a webhook endpoint (its pending deliveries are dropped)",
        responses=responses(400, 401, 403, 404, 503),
    )
    async def delete_webhook(self, request: AuthRequest, webhook_id: FromPath[str]) -> None:
        check_query(request.query_params)
        query = WebhookQuery(request.user, _id(webhook_id, WebhookNotFound))
        await use_cases(request).delete_webhook(query)

    @post(
        "/{webhook_id:str}/rotate",
        opt={**SCOPE, "media_types": JSON},
        status_code=200,
        summary="Rotate the signing secret; the old one signs too until the overlap ends",
        responses=responses(400, 401, 403, 404, 413, 415, 503),
        operation_class=RotateOperation,
    )
    async def rotate(self, request: AuthRequest, webhook_id: FromPath[str]) -> SecretOut:
        check_query(request.query_params)
        ident = _id(webhook_id, WebhookNotFound)
        overlap = RotateRequest.decode(await request.json()).overlap_seconds
        command = RotateSecretCommand(request.user, ident, overlap)
        return SecretOut(await use_cases(request).rotate_webhook_secret(command))

    @post(
        "/{webhook_id:str}/ping",
        opt=SCOPE,
        status_code=202,
        summary="Send one webhook.ping delivery",
        responses=responses(400, 401, 403, 404, 503),
    )
    async def ping(self, request: AuthRequest, webhook_id: FromPath[str]) -> PingAccepted:
        check_query(request.query_params)
        query = WebhookQuery(request.user, _id(webhook_id, WebhookNotFound))
        delivery = await use_cases(request).ping_webhook(query)
        return PingAccepted(delivery.id)

    @get(
        "/{webhook_id:str}/deliveries",
        opt=SCOPE,
        summary="List an endpoint's deliveries, newest first, with their attempts",
        responses=responses(400, 401, 403, 404, 503),
        response_headers=[
            ResponseHeader(
                name="Link",
                description='The next page, as `<url>; rel="next"`, when there is one',
                documentation_only=True,
            )
        ],
    )
    async def deliveries(
        self,
        request: AuthRequest,
        webhook_id: FromPath[str],
        state_filter: Annotated[
            str | None,
            QueryParameter(
                name="state",
                description="Only deliveries in this state",
                schema_extra={"enum": [s.value for s in DeliveryState]},
            ),
        ] = None,
        limit: Annotated[
            int, Parameter(ge=1, le=1000, description="Page size (100 when not given)")
        ] = DELIVERY_LIMIT_DEFAULT,
        cursor: Annotated[
            str | None, Parameter(description="Opaque: from the previous page's Link header")
        ] = None,
    ) -> Response[list[DeliveryOut]]:
        check_query(request.query_params, scalars=("state", "limit", "cursor"), integers=("limit",))
        ident = _id(webhook_id, WebhookNotFound)
        before = None if cursor is None else decode_delivery_cursor(cursor)
        state = state_filter
        query = ListDeliveriesQuery(request.user, ident, _state(state), limit, before)
        page = await use_cases(request).list_deliveries(query)
        headers = {}
        if page.next_key is not None:
            following = [("state", state)] if state is not None else []
            following += [("limit", str(limit)), ("cursor", encode_delivery_cursor(page.next_key))]
            headers["Link"] = f'<{self.path}/{ident}/deliveries?{urlencode(following)}>; rel="next"'
        return Response([DeliveryOut.of(d) for d in page.deliveries], headers=headers)

    @post(
        "/{webhook_id:str}/deliveries/{delivery_id:str}/redeliver",
        opt=SCOPE,
        status_code=202,
        summary="Make a delivery pending again, with an attempt due now",
        responses=responses(400, 401, 403, 404, 503),
    )
    async def redeliver(
        self, request: AuthRequest, webhook_id: FromPath[str], delivery_id: FromPath[str]
    ) -> None:
        check_query(request.query_params)
        command = RedeliverCommand(
            request.user,
            _id(webhook_id, WebhookNotFound),
            _id(delivery_id, DeliveryNotFound),
        )
        await use_cases(request).redeliver(command)
