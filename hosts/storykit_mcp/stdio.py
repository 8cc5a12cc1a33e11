"""``storykit mcp``: the tools over stdin/stdout, for agents that start a local command.

Remote (``--url``/``STORYKIT_URL`` and ``STORYKIT_API_KEY``): every tool is a call to that
server's HTTP API with that key's role. Local: the core on the local data directory, as
an *agent* named ``mcp:<OS user>`` (a local run has no key to say who it is). It has the
agent role, so it can never approve, and it is not the OS user: the person at the
keyboard reviews what their agent proposed with the local CLI or the dashboard.
"""

from __future__ import annotations

from typing import Any

from mcp.server.stdio import stdio_server

from storykit.auth import Principal, Role
from storykit.services import Storykit
from storykit.settings import Settings
from storykit_mcp.gateway import Gateway
from storykit_mcp.local import CoreGateway
from storykit_mcp.remote import RemoteGateway
from storykit_mcp.server import build_server

__all__ = ["local_agent", "serve", "serve_local", "serve_remote"]


def local_agent(user: str) -> Principal:
    """The principal of a local stdio run for OS user ``user``."""
    return Principal(name=f"mcp:{user}", role=Role.AGENT)


async def serve(gateway: Gateway) -> None:
    """Serve the tools on stdin/stdout until the client closes them."""
    server = build_server(lambda _request: gateway)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def serve_remote(url: str, key: str) -> None:
    async with RemoteGateway.open(url, key) as gateway:
        await serve(gateway)


async def serve_local(settings: Settings, user: str, **core: Any) -> None:
    async with Storykit.open(settings, **core) as opened:
        await serve(CoreGateway(opened, local_agent(user)))
