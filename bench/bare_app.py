"""The framework ceiling: a bare Litestar app serving fixed JSON on tdb's routes.

No auth, no store, no validation beyond what Litestar does anyway: what tdb could at best reach
on the same server (the benchmarks serve it as `tdb serve` serves tdb, with as many workers).
`BARE_LIST_SIZE` (default 1000) is how many summaries `GET /v1/sources` returns. Handlers return
plain objects, so Litestar encodes the JSON on every request, as it does for tdb.
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, Response, get, post

SOURCE_ID = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"

RECORD: dict[str, Any] = {
    "id": SOURCE_ID,
    "name": "orders",
    "source_type": "postgres",
    "connection": {
        "host": "db.internal",
        "port": 5432,
        "dbname": "production",
        "user": "tdb_reader",
        "password": "s3cret",
        "table": "orders",
        "schema": "public",
    },
    "description": "Order records",
    "tags": ["production", "finance"],
    "registered_by": "tdbk_0123456789abcdef",
    "registered_at": "2026-05-22T09:00:00Z",
    "status": "active",
}


def _summaries(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"a1b2c3d4-e5f6-4a7b-8c9d-{i:012x}",
            "name": f"source-{i:05d}",
            "source_type": "postgres",
            "description": "Order records",
            "tags": ["production", "finance"],
            "registered_at": "2026-05-22T09:00:00Z",
        }
        for i in range(n)
    ]


SUMMARIES = _summaries(int(os.environ.get("BARE_LIST_SIZE", "1000")))

SCHEMA: dict[str, Any] = {
    "source_id": SOURCE_ID,
    "source_name": "orders",
    "columns": [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "customer_id", "type": "integer", "nullable": False},
        {"name": "total", "type": "numeric", "nullable": True},
        {"name": "status", "type": "character varying", "nullable": True},
        {"name": "created_at", "type": "timestamp without time zone", "nullable": True},
    ],
    "inspected_at": "2026-05-22T09:10:00Z",
}


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/v1/sources/{source_id:str}")
async def get_source(source_id: str) -> dict[str, Any]:
    return RECORD


@get("/v1/sources")
async def list_sources() -> list[dict[str, Any]]:
    return SUMMARIES


@post("/v1/sources", status_code=201)
async def register(data: dict[str, Any]) -> Response[dict[str, Any]]:
    # The body is decoded (the framework's share of the work) and a fixed record comes back.
    return Response(RECORD, status_code=201, headers={"Location": f"/v1/sources/{SOURCE_ID}"})


@get("/v1/sources/{source_id:str}/schema")
async def get_schema(source_id: str) -> dict[str, Any]:
    return SCHEMA


app = Litestar(
    route_handlers=[healthz, get_source, list_sources, register, get_schema],
    openapi_config=None,
    logging_config=None,
)
