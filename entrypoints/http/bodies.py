"""Request bodies: JSON only where JSON is declared, and every undecodable body a 400, not a 500."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.types import Scope

JSON = ("application/json",)


class TdbRequest(Request[Any, Any, Any]):
    """A request whose JSON body fails as a client error whatever is wrong with it, and the
    same error on every route that reads one (a declared `data` or `request.json()`).

    Bytes that are not UTF-8 are "not valid UTF-8" wherever they are, any other undecodable body
    "not valid JSON", whichever exception the installed msgspec raises for them (0.23 raises
    `DecodeError` where older versions raised `UnicodeDecodeError`); deep nesting raises
    `RecursionError` (a 64 KiB body can nest 30 000 levels). All are the client's doing.
    """

    async def json(self) -> Any:
        try:
            return await super().json()
        except (SerializationException, UnicodeDecodeError):
            raise _malformed(_undecodable(await self.body())) from None
        except RecursionError:
            raise _malformed("nests too deeply") from None


def _undecodable(body: bytes) -> str:
    """What is wrong with a body JSON could not decode."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "is not valid UTF-8"
    return "is not valid JSON"


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


def check_media_type(scope: Scope, opt: dict[str, Any]) -> None:
    """For routes whose `opt["media_types"]` names the types they take: raise a 415 unless the
    body's Content-Type is one of them, in UTF-8. Without it, a body sent as text/plain or with
    no type at all is read as JSON, and a client that mislabels its body never learns it.

    It runs after the key's scope check and before the body is read. (A Litestar guard would do
    the same, but Litestar copies the route handler for every guard call: a tenth of the time a
    registration takes.)
    """
    accepted: tuple[str, ...] | None = opt.get("media_types")
    if accepted is not None:
        _require_media_type(scope["headers"], accepted)


def _require_media_type(headers: Iterable[tuple[bytes, bytes]], accepted: tuple[str, ...]) -> None:
    content_type = next(
        (value.decode("latin-1") for name, value in headers if name.lower() == b"content-type"),
        "",
    )
    kind, params = media_type(content_type)
    if kind not in accepted or params.get("charset", "utf-8") not in ("utf-8", "utf8"):
        raise HTTPException(
            status_code=415,
            detail=f"The body must be sent as {' or '.join(accepted)} (UTF-8).",
            headers={"Accept-Post": ", ".join(accepted)},
        )
