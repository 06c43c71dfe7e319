"""The MCP server over Streamable HTTP at `/mcp`, mounted in the app behind the Bearer check.

Stateless and JSON (no session, no event stream): each POST is authenticated on its own, as
every route's request is, so any worker of any replica can answer it and a revoked key stops at
once; the key's principal reaches the tools through the request's scope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from domain.keys import Principal
from entrypoints.container import Container
from entrypoints.http.auth import BearerAuth
from entrypoints.mcp.server import mcp_server

MCP_PATH = "/mcp"
_PRINCIPAL = "tdb.principal"


def _principal_of(ctx: ServerRequestContext[Any, Any]) -> Principal:
    # Set by the mount below on every request before the SDK sees it.
    request = ctx.request
    principal: Principal = request.scope[_PRINCIPAL]  # type: ignore[union-attr]
    return principal


class McpEndpoint:
    """The SDK's session manager for one app, and the mount that serves it."""

    def __init__(self, container: Container, auth: BearerAuth) -> None:
        self._auth = auth
        self.manager = StreamableHTTPSessionManager(
            app=mcp_server(container, _principal_of), stateless=True, json_response=True
        )

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """The app's lifespan runs the session manager (its task group) while it serves."""
        async with self.manager.run():
            yield

    def handler(self) -> ASGIRouteHandler:
        auth, manager = self._auth, self.manager

        # An ASGI route at the one path, not a mount (`is_mount`): with any mount in the app,
        # Litestar matches every request's path against the mounts' pattern first, a cost the
        # other routes' requests (the GET by id) would pay for nothing.
        @asgi(MCP_PATH, copy_scope=True)
        async def mcp(scope: Scope, receive: Receive, send: Send) -> None:
            # Not a route: the app's before_request hook does not run here, so the same check
            # is made in front (a failure is the same 401 problem, by the app's handlers).
            scope[_PRINCIPAL] = await auth.principal_of(scope)  # type: ignore[literal-required]
            await manager.handle_request(scope, receive, send)  # type: ignore[arg-type]

        return mcp
