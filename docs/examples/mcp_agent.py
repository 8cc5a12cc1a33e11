"""A minimal coding agent on storykit's MCP endpoint: propose a change, wait for a person,
revise when asked, stop when decided. CI runs it against a real server
(tests/mcp/test_example_agent.py).

    STORYKIT_URL=http://127.0.0.1:8001 STORYKIT_API_KEY=<an agent key> python mcp_agent.py
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import httpx2  # the HTTP client the MCP SDK uses; it comes with `pip install mcp`
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

OLD, NEW = "timeout = 5\n", "timeout = 30\n"


def make_diff(new: str) -> str:
    return (
        "diff --git a/app/config.py b/app/config.py\n--- a/app/config.py\n+++ b/app/config.py\n"
        f"@@ -1 +1 @@\n-{OLD}+{new}"
    )


async def call(storykit: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await storykit.call_tool(tool, arguments)
    if result.is_error:  # the text is what the HTTP API would put in a problem's detail
        text = "".join(getattr(block, "text", "") for block in result.content)
        raise SystemExit(f"{tool}: {text}")
    data: dict[str, Any] = result.structured_content
    return data


async def main() -> int:
    url = os.environ["STORYKIT_URL"].rstrip("/") + "/mcp"
    headers = {"X-API-Key": os.environ["STORYKIT_API_KEY"]}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http,
        Client(streamable_http_client(url, http_client=http)) as storykit,
    ):
        diff = make_diff(NEW)
        checked = await call(storykit, "check_diff", diff=diff)
        print("policy says", checked["outcome"], flush=True)
        s = await call(
            storykit,
            "submit_suggestion",
            title="Raise the request timeout to 30 s",
            diff=diff,
            rationale="Slow upstreams time out at 5 s.",
        )
        print("submitted", s["id"], s["status"], flush=True)
        while True:
            waited = await call(storykit, "wait_for_review", id=s["id"], timeout_s=45)
            status = waited["status"]
            if status == "pending":
                await asyncio.sleep(waited["retry_after_s"])
            elif status == "revision_requested":
                comment = waited["review"]["comment"]
                print("asked to revise:", comment, flush=True)
                value = "".join(c for c in comment if c.isdigit()) or "30"
                await call(
                    storykit,
                    "revise_suggestion",
                    id=s["id"],
                    diff=make_diff(f"timeout = {value}\n"),
                    note=f"Done: {comment}",
                )
            else:
                print("decided", status, flush=True)  # approved, rejected or blocked
                return 0 if status == "approved" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
