"""The connector catalogue API: `GET /v1/connectors`, the source types this server can register."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from application.connectors import ListConnectors
from domain.keys import Principal
from entrypoints.catalog import ConnectorOut
from entrypoints.http.openapi import responses
from entrypoints.http.query import check_query
from entrypoints.http.use_cases import use_cases


@get(
    "/v1/connectors",
    opt={"scope": ListConnectors.required_scope},
    summary="List the source types this server can register, each with its connection's"
    " JSON Schema",
    tags=["connectors"],
    responses=responses(400, 401, 403, 503),
)
async def list_connectors(request: Request[Principal, str, Any]) -> list[ConnectorOut]:
    check_query(request.query_params)
    catalog = await use_cases(request).list_connectors(request.user)
    return [ConnectorOut.of(connector) for connector in catalog.connectors]
