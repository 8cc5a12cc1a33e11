"""The MCP server: the tool list and one call handler, on the SDK's low-level server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mcp.types as types
from mcp.server import Server, ServerRequestContext

import storykit
from storykit.errors import StorykitError
from storykit_mcp.gateway import Gateway
from storykit_mcp.tools import TOOLS, call_tool, tool_error

__all__ = ["INSTRUCTIONS", "build_server"]

INSTRUCTIONS = """\
storykit is a review gate: you propose code changes as unified diffs, people review them.
Nothing you submit reaches the code until a person approves it, and no tool here approves.
1. check_diff screens a diff against policy without storing it (fix what it would block).
2. submit_suggestion stores it for review and returns its id, status, risk and findings.
3. wait_for_review returns as soon as a person decides (or pending after at most 45 s:
   call it again). On revision_requested, read the reviewer's comment and line comments
   (review.comments: file, line, side) and call revise_suggestion with the new diff; it
   then waits for a new decision.
4. get_suggestion and list_my_suggestions read what you proposed; list_revisions with
   since shows what your revisions changed.
"""

GatewayFor = Callable[[Any], Gateway]
"""The gateway for one call, given the HTTP request it came in (None on stdio)."""


def build_server(gateway_for: GatewayFor) -> Server[Any]:
    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=list(TOOLS))

    async def call(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            gateway = gateway_for(ctx.request)
        except StorykitError as exc:
            return tool_error(exc.detail)
        return await call_tool(gateway, params.name, params.arguments)

    return Server(
        "storykit",
        version=storykit.__version__,
        title="storykit review gate",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call,
    )
