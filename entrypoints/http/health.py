"""Unauthenticated liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from entrypoints.http.openapi import responses
from entrypoints.http.use_cases import use_cases
from entrypoints.presenters import Health


@get("/healthz", security=[{}], tags=["ops"], summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@get(
    "/readyz",
    security=[{}],
    tags=["ops"],
    summary="The store answers",
    responses=responses(503),
)
async def readyz(request: Request[Any, Any, Any]) -> Health:
    await use_cases(request).check_readiness()
    return Health(status="ready")
