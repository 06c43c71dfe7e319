"""Unauthenticated liveness and readiness probes."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency

from application.store import CheckReadiness
from entrypoints.http.openapi import responses
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
async def readyz(check_readiness: NamedDependency[CheckReadiness]) -> Health:
    await check_readiness()
    return Health(status="ready")
