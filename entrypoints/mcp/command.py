"""`tdb mcp`: the MCP server over stdio, as the local operator or as one API key."""

from __future__ import annotations

from types import SimpleNamespace

import click

from entrypoints.commands import store_options, with_container
from entrypoints.container import Container
from entrypoints.operator import OPERATOR


@click.command(
    "mcp",
    help="serve the Model Context Protocol on stdin/stdout (as the local operator, or as"
    " --token's key); secrets are masked in every answer",
)
@store_options
@click.option(
    "--token",
    envvar="TDB_MCP_TOKEN",
    help="TDB_MCP_TOKEN: act as this API key (its scopes, its name in the audit trail)",
)
@with_container()
async def mcp(container: Container, args: SimpleNamespace) -> None:
    # The SDK (and the web stack it brings) is imported by this command only.
    from mcp.server.stdio import stdio_server

    from entrypoints.mcp.server import mcp_server

    # A token is checked once, before serving: a bad one is the command's error (exit 8).
    principal = OPERATOR if args.token is None else await container.authenticate()(args.token)
    server = mcp_server(container, lambda ctx: principal)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
