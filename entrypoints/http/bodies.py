"""Request bodies: JSON only where JSON is declared, and every undecodable body a 400, not a 500."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler

JSON = ("application/json",)


class TdbRequest(Request[Any, Any, Any]):
    """A request whose JSON body fails as a client error whatever is wrong with it.

    msgspec raises `UnicodeDecodeError` for invalid UTF-8 inside a string and `RecursionError`
    for deep nesting (a 64 KiB body can nest 30 000 levels); both are the client's doing.
    """

    async def json(self) -> Any:
        try:
            return await super().json()
        except UnicodeDecodeError:
            raise _malformed("is not valid UTF-8") from None
        except RecursionError:
            raise _malformed("nests too deeply") from None


def _malformed(message: str) -> ValidationException:
    return ValidationException(extra=[{"key": "body", "message": message}])


def media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """The media type of a Content-Type header (lower case) and its parameters."""
    kind, *parameters = content_type.split(";")
    params = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        params[name.strip().lower()] = value.strip().strip('"').lower()
    return kind.strip().lower(), params


async def require_media_type(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: the body's Content-Type is one of the route's `opt["media_types"]` (default JSON),
    in UTF-8; otherwise 415. Without this, a body sent as text/plain or with no type at all is
    read as JSON, and a client that mislabels its body never learns it.
    """
    accepted = handler.opt.get("media_types", JSON)
    kind, params = media_type(connection.headers.get("content-type", ""))
    if kind not in accepted or params.get("charset", "utf-8") not in ("utf-8", "utf8"):
        raise HTTPException(
            status_code=415,
            detail=f"The body must be sent as {' or '.join(accepted)} (UTF-8).",
            headers={"Accept-Post": ", ".join(accepted)},
        )
