"""Bearer-token authentication and the route's checks (the key's scope, then the body's media
type), in one hook run before every route's handler."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from litestar import Request
from litestar.types import Scope as ASGIScope

from application.keys import Authenticate, KeyUses, PrincipalCache
from domain.errors import AuthenticationFailed, InvalidInput, PermissionDenied
from domain.keys import Principal, Scope
from entrypoints.http.bodies import check_media_type

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


class BearerAuth:
    """Authenticates every request outside the unauthenticated paths, then makes the route's
    checks: the app's `before_request` hook, run by the route before its handler's parameters
    are read.

    As Litestar's authentication middleware would (OPTIONS and the excluded paths pass without
    a key), but not as a middleware: any middleware makes Litestar put a second exception
    middleware around every route, and the middleware itself costs a coroutine per request.
    A failure is answered by the app's exception handlers all the same.
    """

    def __init__(
        self,
        authenticate: Callable[[], Authenticate],
        cache: PrincipalCache,
        exclude: list[str],
        uses: KeyUses | None = None,
    ) -> None:
        self._authenticate = authenticate
        self._cache = cache
        self._exclude = re.compile("|".join(exclude))
        self._seen = uses.seen if uses is not None else None

    async def __call__(self, request: Request[Any, Any, Any]) -> None:
        scope = request.scope
        if scope["method"] != "OPTIONS" and not self._exclude.search(scope["path"]):
            token = bearer_token(_authorization(scope["headers"]))
            principal = self._cache.get(token)
            if principal is None:
                principal = await self._principal(token)
            scope["user"] = principal
            scope["auth"] = token
            # The key's last use, to the minute: noted here, written behind (no I/O).
            if principal.key_id is not None and self._seen is not None:
                self._seen(principal.key_id)
        # The route's checks, in this order, before the app reads the path's id or the body.
        opt = scope["route_handler"].opt
        _check_scope(scope, opt)
        check_media_type(scope, opt)

    async def principal_of(self, scope: ASGIScope) -> Principal:
        """The principal of a request's Bearer token, put in its scope (`user`, `auth`) as for
        every route; `AuthenticationFailed` (or `InvalidInput`, two headers) otherwise. For
        what is served beside the routes (the MCP endpoint), which make their own checks."""
        token = bearer_token(_authorization(scope["headers"]))
        principal = self._cache.get(token)
        scope["user"] = principal if principal is not None else await self._principal(token)
        scope["auth"] = token
        return scope["user"]  # type: ignore[no-any-return]

    async def _principal(self, token: str) -> Principal:
        principal = self._cache.get(token)
        if principal is None:
            principal = await self._authenticate()(token)
            self._cache.put(token, principal)
        return principal


def _check_scope(scope: ASGIScope, opt: dict[str, Any]) -> None:
    """Raise `PermissionDenied` unless the authenticated key holds the route's `opt["scope"]`
    (if it names one).

    It runs before the path's id is parsed and before the body is read, so a key without the
    scope gets 403 whatever id or body it sends. (A guard would do the same, but Litestar
    copies the route handler for every guard call, which costs more than the token check on a
    cache hit; a wrapping app would cost a coroutine per request.) The use case checks the
    scope again.
    """
    required: Scope | None = opt.get("scope")
    # No user: the path is one served without a key (OPTIONS included), which names no scope.
    user = scope.get("user")
    if required is not None and user is not None and not user.can(required):
        raise PermissionDenied(required)
