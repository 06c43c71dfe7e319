"""A JSON answer whose ASGI messages are made in one step, for the hottest routes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from litestar import Response
from litestar.enums import MediaType
from litestar.serialization import get_serializer
from litestar.status_codes import HTTP_200_OK
from litestar.types import Receive, Scope, Send

if TYPE_CHECKING:
    from litestar import Litestar, Request
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures import Cookie
    from litestar.types import TypeEncodersMap

T = TypeVar("T")

_JSON = MediaType.JSON.value
_CONTENT_TYPE = (b"content-type", _JSON.encode("latin-1"))
_SERIALIZER = get_serializer(None)


class JSONResponse(Response[T]):
    """A `Response` of JSON content with string headers, sent as Litestar would send it.

    Litestar turns a `Response` into an `ASGIResponse`, which parses its headers into a
    header object, looks up and sets the content type and length one by one and encodes them
    back, on every request. The messages here are built at once, with the same bytes: the
    response's own headers in their order (lower-cased), then `content-type` and
    `content-length`. Anything but a plain 200 (cookies, a background task, route-level headers,
    another status, media type or encoder) is left to Litestar.
    """

    __slots__ = ()

    def __init__(self, content: T, *, headers: dict[str, str] | None = None) -> None:
        # What Response.__init__ sets for content and headers alone, without its checks of
        # cookies and headers against typing.Mapping (two slow isinstance calls per request).
        self.content = content
        self.headers = dict(headers) if headers else {}
        self.background = None
        self.cookies = []
        self.encoding = "utf-8"
        self.media_type = None
        self.status_code = None
        self.response_type_encoders = {}

    def to_asgi_response(
        self,
        app: Litestar | None,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> Any:
        if (
            app is not None
            or background is not None
            or self.background is not None
            or cookies
            or self.cookies
            or encoded_headers is not None
            or headers
            or is_head_response
            or type_encoders
            or self.response_type_encoders
            or (self.media_type or media_type or _JSON) != _JSON
            or self.encoding != "utf-8"
            or (self.status_code or status_code or HTTP_200_OK) != HTTP_200_OK
        ):
            return super().to_asgi_response(
                app,
                request,
                background=background,
                cookies=cookies,
                encoded_headers=encoded_headers,
                headers=headers,
                is_head_response=is_head_response,
                media_type=media_type,
                status_code=status_code,
                type_encoders=type_encoders,
            )
        body = self.render(self.content, _JSON, _SERIALIZER)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        names = {k for k, _ in raw}
        if b"content-type" not in names:
            raw.append(_CONTENT_TYPE)
        if b"content-length" not in names:
            raw.append((b"content-length", str(len(body)).encode("latin-1")))
        return _Sent(HTTP_200_OK, raw, body)


class _Sent:
    """The two messages of an answer, status and headers then the whole body."""

    __slots__ = ("_body", "_headers", "_status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self._status = status
        self._headers = headers
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self._status, "headers": self._headers}
        )
        await send({"type": "http.response.body", "body": self._body, "more_body": False})
