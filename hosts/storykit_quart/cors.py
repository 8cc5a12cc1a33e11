"""CORS, closed unless ``CORS_ORIGINS`` lists origins.

An entry is an exact origin (``https://review.example.com``) or a scheme with a
wildcard host (``vscode-webview://*``), for the VS Code webview whose host part
changes per window.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["allowed_origin"]


def allowed_origin(origin: str, allowed: Sequence[str]) -> bool:
    for entry in allowed:
        if entry == "*" or entry == origin:
            return True
        if (
            entry.endswith("://*")
            and origin.startswith(entry[:-1])
            and len(origin) > len(entry) - 1
        ):
            return True
    return False
