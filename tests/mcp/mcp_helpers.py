"""Helpers for the MCP tests (a unique module name: see tests/watchdog/conftest.py)."""

from __future__ import annotations

import json
from typing import Any

from mcp import Client
from mcp.types import CallToolResult

TOOL_NAMES = {
    "check_diff",
    "submit_suggestion",
    "get_suggestion",
    "wait_for_review",
    "revise_suggestion",
    "list_my_suggestions",
    "list_revisions",
}
"""SPEC §9: the names are the contract (list_revisions added with issue 16)."""


async def ok(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a tool that must succeed; its structured result (also sent as the text)."""
    result = await client.call_tool(name, arguments)
    assert not result.is_error, text(result)
    data = result.structured_content
    assert isinstance(data, dict)
    assert json.loads(text(result)) == data
    return data


async def error(client: Client, name: str, arguments: Any) -> str:
    """Call a tool that must fail with a tool error; its text."""
    result = await client.call_tool(name, arguments)
    assert result.is_error, result
    assert result.structured_content is None
    return text(result)


def text(result: CallToolResult) -> str:
    [block] = result.content
    assert block.type == "text"
    return block.text
