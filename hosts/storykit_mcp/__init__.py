"""storykit's MCP host: the tools of SPEC §9 for coding agents, over streamable HTTP
(``/mcp`` in ``storykit serve``) or stdio (``storykit mcp``). Needs the ``mcp`` extra."""

from __future__ import annotations

__all__: list[str] = []
