"""The storykit web host: a Quart app served by Hypercorn (REST, SSE, metrics, the dashboard)."""

from __future__ import annotations

from storykit_quart.app import create_app

__all__ = ["create_app"]
