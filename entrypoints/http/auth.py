"""Bearer-token authentication (one middleware) and scope checks (one guard)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import anyio.to_thread
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from application.keys import Authenticate, PrincipalCache
from domain.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from domain.keys import Scope

# Patterns (regular expressions) of paths served without a key: the probes, the metrics and the
# OpenAPI document.
UNAUTHENTICATED_PATHS = ["^/healthz$", "^/readyz$", "^/metrics$", "^/schema(/|$)"]


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; `AuthenticationFailed` otherwise."""
    if not authorization or not authorization.strip():
        raise AuthenticationFailed("missing")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthenticationFailed("malformed")
    return token


def _authorization(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The one Authorization header; two of them are a malformed request (which one counts would
    depend on the proxy in front)."""
    # Straight from the ASGI scope: parsing every header into a Headers object costs more
    # than the whole token check on a cache hit.
    found = [value for name, value in headers if name.lower() == b"authorization"]
    if len(found) > 1:
        raise InvalidInput.single("Authorization", "must be sent once")
    return found[0].decode("latin-1") if found else None


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates every request outside the unauthenticated paths."""

    def __init__(
        self,
        app: ASGIApp,
        authenticate: Callable[[], Authenticate],
        cache: PrincipalCache,
        exclude: list[str] | None = None,
    ) -> None:
        super().__init__(app, exclude=exclude)
        self._authenticate = authenticate
        self._cache = cache

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token = bearer_token(_authorization(connection.scope["headers"]))
        principal = self._cache.get(token)
        if principal is None:
            principal = await anyio.to_thread.run_sync(self._authenticate(), token)
            self._cache.put(token, principal)
        return AuthenticationResult(user=principal, auth=token)


async def require_scope(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: the caller must hold the route's `opt["scope"]`, if it names one.

    Guards run before the path's id is parsed and before the body is read, so a key without
    the scope gets 403 whatever id or body it sends. (The use case checks the scope again.)
    Async although it does no I/O: Litestar runs a sync guard on a worker thread.
    """
    scope: Scope | None = handler.opt.get("scope")
    if scope is not None and not connection.user.can(scope):
        raise PermissionDenied(scope)
