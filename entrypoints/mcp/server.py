"""The MCP server: the tools a principal may call, listed and called through the use cases.

Transport-free: `tdb mcp` serves it over stdio as one principal, `tdb serve` over Streamable HTTP
at `/mcp` as each request's Bearer key (`principal_of` says who a request comes from).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import attrs
import mcp_types as types
import msgspec
from mcp.server import Server
from mcp.server.context import ServerRequestContext

from domain.errors import DomainError, InvalidInput
from domain.keys import Principal, Scope
from entrypoints.container import Container
from entrypoints.mcp import schemas
from entrypoints.mcp.tools import TOOLS, Arguments, Tool
from entrypoints.runtime.outcomes import outcome_of

SERVER_NAME = "tdb"
PrincipalOf = Callable[[ServerRequestContext[Any, Any]], Principal]


def acting(principal: Principal) -> Principal:
    """Who a tool acts as: the principal without `sources:secrets`, so that no answer shows a
    secret in clear (the local operator stays trusted with them otherwise, as `OPERATOR_MASKED`)."""
    return attrs.evolve(principal, scopes=principal.scopes - {Scope.SECRETS})


def _known(schema: dict[str, Any]) -> set[str]:
    shapes = schema.get("oneOf", [schema])
    return {name for shape in shapes for name in shape.get("properties", {})}


def _completed(tool: Tool, inputs: dict[str, Any]) -> Tool:
    """The tool with its input schema (a request body's, made for this build's connectors)."""
    if tool.input_schema is not None:
        return tool
    return attrs.evolve(tool, input_schema=inputs[tool.name])


def _listed(tool: Tool) -> types.Tool:
    """The tool as `tools/list` shows it; `_meta` names the scope of its route."""
    return types.Tool.model_validate(
        {
            "name": tool.name,
            "description": tool.description,
            "inputSchema": tool.input_schema,
            "outputSchema": tool.output_schema,
            "annotations": {
                "readOnlyHint": not tool.writes,
                "destructiveHint": tool.name == "delete_source",
                "idempotentHint": not tool.writes,
                # The two that reach the source's backend.
                "openWorldHint": tool.name in ("get_schema", "test_connection"),
            },
            "_meta": {"tdb/scope": tool.scope.value},
        }
    )


def _result(answer: Any, error: bool = False) -> types.CallToolResult:
    structured = msgspec.to_builtins(answer)
    text = msgspec.json.encode(answer).decode()
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content=structured, is_error=error
    )


class ToolBox:
    """The tools of one container: listed per principal (a tool whose scope the key lacks is not
    listed, nor called), called through the container's use cases (made once, kept)."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self._use_cases: dict[str, Any] = {}

    # Made at the first listing or call, not with the server: see `schemas.completed_inputs`.
    @functools.cached_property
    def _tools(self) -> dict[str, Tool]:
        inputs = schemas.completed_inputs(self._container.connectors())
        return {t.name: _completed(t, inputs) for t in TOOLS}

    @functools.cached_property
    def _listed(self) -> dict[str, types.Tool]:
        return {name: _listed(t) for name, t in self._tools.items()}

    @functools.cached_property
    def _known(self) -> dict[str, set[str]]:
        return {name: _known(t.input_schema or {}) for name, t in self._tools.items()}

    def listed(self, principal: Principal) -> list[types.Tool]:
        return [self._listed[n] for n, t in self._tools.items() if principal.can(t.scope)]

    def _use_case(self, name: str) -> Any:
        made = self._use_cases.get(name)
        if made is None:
            made = self._use_cases[name] = getattr(self._container, name)()
        return made

    async def call(
        self, principal: Principal, name: str, arguments: dict[str, Any] | None
    ) -> types.CallToolResult:
        """The tool's answer, or its error as a result with `isError` and the problem body
        (the outcome every entrypoint gives this error)."""
        try:
            tool = self._tools.get(name)
            if tool is None:
                raise InvalidInput.single("name", f"{name!r} is not a tool of this server")
            args = Arguments(arguments, self._known[name])
            answer = await tool.run(args, self._use_case(tool.use_case), acting(principal))
        except DomainError as exc:
            return _result(outcome_of(exc).problem(), error=True)
        return _result(answer)


def mcp_server(container: Container, principal_of: PrincipalOf) -> Server[Any]:
    """A low-level MCP server over the container's use cases."""
    box = ToolBox(container)

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=box.listed(principal_of(ctx)))

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await box.call(principal_of(ctx), params.name, params.arguments)

    return Server(
        SERVER_NAME,
        version="1",
        instructions="tdb: a registry of data sources. Read sources, their live schemas and"
        " schema histories, search columns across sources, read the audit trail; with"
        " sources:write, register, update and delete sources (if_match required).",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
