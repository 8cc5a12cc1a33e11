"""MCP host tests: the SDK's own client, in process, over streamable HTTP and over stdio."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # mcp_helpers, under any --import-mode
sys.path.insert(0, str(Path(__file__).parent.parent / "web"))  # realserver
