"""Generated docs for the web host: the OpenAPI document, written to ``docs/openapi.json``."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import anyio
import structlog

__all__ = ["generators", "openapi_json"]


def openapi_json() -> str:
    from storykit.plugins import get_plugin_manager
    from storykit.settings import Settings
    from storykit_quart.app import create_app

    async def fetch() -> str:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings.from_env({"REPO_PATH": tmp}, data_dir=Path(tmp) / "data")
            app = create_app(settings, plugin_manager=get_plugin_manager(load_entrypoints=False))
            with structlog.testing.capture_logs():  # keep the request log out of the output
                async with app.test_app() as test_app:
                    response = await test_app.test_client().get("/openapi.json")
                    doc = await response.get_json()
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    return anyio.run(fetch)


def generators() -> dict[str, Callable[[], str]]:
    return {"docs/openapi.json": openapi_json}
