"""Helpers for testing storykit and storykit plugins without a server.

The project's own tests use exactly these, so a plugin author's test looks like
storykit's::

    from storykit.testing import open_core, REVIEWER, make_diff

    async def test_my_policy(tmp_path):
        async with open_core(tmp_path, plugins={"mine": my_plugin}) as core:
            s = await core.submit(AGENT, title="t", diff=make_diff("a.py", "x\\n", "y\\n"))
            assert s.status == "blocked"

Nothing here imports pytest; use it from any test runner on asyncio or trio.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import NoReturn

from storykit.auth import Principal, Role
from storykit.plugins import get_plugin_manager
from storykit.services import Storykit
from storykit.settings import Settings

__all__ = [
    "ADMIN",
    "AGENT",
    "OTHER_AGENT",
    "OTHER_REVIEWER",
    "REVIEWER",
    "make_diff",
    "make_settings",
    "open_core",
    "tool_missing",
]

AGENT = Principal(name="bot", role=Role.AGENT)
OTHER_AGENT = Principal(name="other-bot", role=Role.AGENT)
REVIEWER = Principal(name="alice", role=Role.REVIEWER)
OTHER_REVIEWER = Principal(name="bob", role=Role.REVIEWER)
ADMIN = Principal(name="root", role=Role.ADMIN)


def make_settings(
    tmp_path: Path, env: Mapping[str, str] | None = None, **overrides: object
) -> Settings:
    """Settings whose data directory and repository live under ``tmp_path``."""
    base = {"REPO_PATH": str(tmp_path / "repo"), "API_TOKENS": ""}
    return Settings.from_env(base | dict(env or {}), data_dir=tmp_path / "data", **overrides)


def make_diff(path: str, old: str, new: str) -> str:
    """A git-style diff changing ``path`` from ``old`` to ``new`` (``""`` to add or delete)."""
    a = f"a/{path}" if old else "/dev/null"
    b = f"b/{path}" if new else "/dev/null"
    body = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=a, tofile=b
    )
    mode = "new file mode 100644\n" if not old else "deleted file mode 100644\n" if not new else ""
    return f"diff --git a/{path} b/{path}\n{mode}" + "".join(body)


@contextlib.asynccontextmanager
async def open_core(
    tmp_path: Path,
    *,
    plugins: Mapping[str, object] | None = None,
    load_entrypoints: bool = False,
    settings: Settings | None = None,
    env: Mapping[str, str] | None = None,
    run_observers: bool = True,
) -> AsyncIterator[Storykit]:
    """A :class:`Storykit` on a fresh SQLite file under ``tmp_path`` with only ``plugins``.

    ``plugins`` maps a name to a module or object with ``@hookimpl`` functions;
    ``load_entrypoints=True`` also loads the installed plugins (those named in
    ``STORYKIT_LOAD_PLUGINS`` when ``env`` sets it). It runs observers, as the
    server does; ``run_observers=False`` opens it as a CLI command does.
    """
    settings = settings or make_settings(tmp_path, env)
    pm = get_plugin_manager(load_entrypoints=load_entrypoints, only=settings.load_plugins)
    for name, plugin in (plugins or {}).items():
        pm.register(plugin, name=name)
    pm.check_pending()
    async with Storykit.open(settings, plugin_manager=pm, run_observers=run_observers) as core:
        yield core


def tool_missing(message: str) -> NoReturn:
    """A test's tool or service (Chromium, promtool, PostgreSQL…) is not there: with ``CI``
    set the test fails, so a green run never hides a check that did not run; elsewhere it
    is skipped, with ``message`` saying how to get the tool."""
    import pytest  # only where tests run

    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: a missing tool fails the test)", pytrace=False)
    pytest.skip(message)
