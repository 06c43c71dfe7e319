"""The Keys API (`/v1/keys`, scope `keys:manage`): thin handlers over the key use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import ResponseHeader
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.params import FromPath

from application.keys import KEY_DAYS_MAX, CreateApiKey, RotateApiKey
from domain.keys import ROTATION_OVERLAP_DEFAULT, ROTATION_OVERLAP_MAX, Principal, Scope
from domain.sources import NAME_MAX
from entrypoints.http.bodies import JSON, check_media_type
from entrypoints.http.openapi import name_pattern, responses
from entrypoints.http.query import check_query
from entrypoints.http.use_cases import use_cases
from entrypoints.key_requests import create_key_fields, rotation_overlap
from entrypoints.presenters import IssuedKeyOut, KeyOut

AuthRequest = Request[Principal, str, Any]
OVERLAP_MAX_SECONDS = int(ROTATION_OVERLAP_MAX.total_seconds())
LOCATION = ResponseHeader(
    name="Location", description="URL of the new key", documentation_only=True
)


@dataclass
class CreateKeyOperation(Operation):
    """`POST /v1/keys`: its body, read and decoded by the handler itself."""

    def __post_init__(self) -> None:
        body = Schema(
            type=OpenAPIType.OBJECT,
            properties={
                "name": Schema(
                    type=OpenAPIType.STRING,
                    min_length=1,
                    max_length=NAME_MAX,
                    pattern=name_pattern(),
                    description="Held by one key that is neither revoked nor rotated away;"
                    " at least one visible character; no control characters",
                ),
                "scopes": Schema(
                    type=[OpenAPIType.ARRAY, OpenAPIType.NULL],
                    items=Schema(type=OpenAPIType.STRING, enum=sorted(s.value for s in Scope)),
                    description="None named: every scope (the maker must hold each one)",
                ),
                "expires_in_days": Schema(
                    type=[OpenAPIType.INTEGER, OpenAPIType.NULL],
                    minimum=1,
                    maximum=KEY_DAYS_MAX,
                    description="null: never (refused when the server sets TDB_KEY_MAX_DAYS)",
                ),
            },
            required=["name"],
            additional_properties=False,
        )
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=body)}, required=True
        )


@dataclass
class RotateKeyOperation(Operation):
    """`POST /v1/keys/{key_id}/rotate`: an optional body naming the overlap."""

    def __post_init__(self) -> None:
        body = Schema(
            type=OpenAPIType.OBJECT,
            properties={
                "overlap_seconds": Schema(
                    type=OpenAPIType.INTEGER,
                    minimum=0,
                    maximum=OVERLAP_MAX_SECONDS,
                    default=int(ROTATION_OVERLAP_DEFAULT.total_seconds()),
                    description="How long the old key keeps working",
                )
            },
            additional_properties=False,
        )
        self.request_body = RequestBody(
            content={"application/json": OpenAPIMediaType(schema=body)}, required=False
        )


class KeysController(Controller):
    """`/v1/keys`: make, list, show, revoke and rotate API keys."""

    path = "/v1/keys"
    tags = ["keys"]

    @post(
        "/",
        opt={"scope": CreateApiKey.required_scope, "media_types": JSON},
        status_code=201,
        summary="Create a key; the answer shows its token, once",
        responses=responses(400, 401, 403, 409, 413, 415, 503),
        response_headers=[LOCATION],
        operation_class=CreateKeyOperation,
    )
    async def create_key(self, request: AuthRequest) -> Response[IssuedKeyOut]:
        check_query(request.query_params)
        name, scopes, days = create_key_fields(await request.json())
        issued = await use_cases(request).create_api_key(name, scopes, request.user, days)
        out = IssuedKeyOut.issued(issued.key, issued.token)
        return Response(out, status_code=201, headers={"Location": f"{self.path}/{out.key_id}"})

    @get(
        "/",
        opt={"scope": CreateApiKey.required_scope},
        summary="List keys, revoked and expired ones included (oldest first)",
        responses=responses(400, 401, 403, 503),
    )
    async def list_keys(self, request: AuthRequest) -> list[KeyOut]:
        check_query(request.query_params)
        return [KeyOut.of(k) for k in await use_cases(request).list_api_keys(request.user)]

    @get(
        "/{key_id:str}",
        opt={"scope": CreateApiKey.required_scope},
        summary="Get a key (never its secret)",
        responses=responses(400, 401, 403, 404, 503),
    )
    async def get_key(self, request: AuthRequest, key_id: FromPath[str]) -> KeyOut:
        check_query(request.query_params)
        return KeyOut.of(await use_cases(request).get_api_key(request.user, key_id))

    @delete(
        "/{key_id:str}",
        opt={"scope": CreateApiKey.required_scope},
        summary="Revoke a key (its record stays)",
        responses=responses(400, 401, 403, 404, 503),
    )
    async def revoke_key(self, request: AuthRequest, key_id: FromPath[str]) -> None:
        check_query(request.query_params)
        await use_cases(request).revoke_api_key(key_id, request.user)

    @post(
        "/{key_id:str}/rotate",
        opt={"scope": RotateApiKey.required_scope},
        status_code=201,
        summary="Rotate a key: a new key with its name, scopes and lifetime; the old one works"
        " until the overlap ends",
        responses=responses(400, 401, 403, 404, 409, 413, 415, 503),
        response_headers=[LOCATION],
        operation_class=RotateKeyOperation,
    )
    async def rotate_key(
        self, request: AuthRequest, key_id: FromPath[str]
    ) -> Response[IssuedKeyOut]:
        check_query(request.query_params)
        # The body may be left out (the default overlap); one that is sent must be JSON.
        body: Any = {}
        if await request.body():
            check_media_type(request.scope, {"media_types": JSON})
            body = await request.json()
        overlap = timedelta(seconds=rotation_overlap(body))
        issued = await use_cases(request).rotate_api_key(key_id, request.user, overlap)
        out = IssuedKeyOut.issued(issued.key, issued.token)
        return Response(out, status_code=201, headers={"Location": f"{self.path}/{out.key_id}"})
