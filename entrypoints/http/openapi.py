"""The OpenAPI document's shared parts: the Bearer scheme and the documented error responses."""

from __future__ import annotations

from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme

from entrypoints.http.schemas import Problem

BEARER = "BearerToken"

_MEANINGS = {
    400: "Invalid input: malformed JSON, wrong types, unknown source_type or bad connection fields",
    401: "Missing, malformed, unknown or revoked API key",
    403: "The API key lacks the scope this operation needs",
    404: "Source ID not found",
    409: "A source with this name already exists",
    413: "Request body larger than 64 KiB",
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


def openapi_config() -> OpenAPIConfig:
    """Title, version, and Bearer authentication on every route that does not opt out."""
    return OpenAPIConfig(
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
