"""Helpers for testing storykit and storykit plugins without a server.

The project's own tests use exactly these, so a plugin author's test looks like
storykit's::

    from storykit.testing import open_core, REVIEWER, make_diff

    async def test_my_policy(tmp_path):
        async with open_core(tmp_path, plugins={"mine": my_plugin}) as core:
            s = await core.submit(AGENT, title="t", diff=make_diff("a.py", "x\\n", "y\\n"))
            assert s.status == "blocked"

Fakes for each kind of backend (:class:`FakeSource`, :class:`FakePolicy`,
:class:`FakePlanner`, :class:`FakeBackend`, :class:`FakeRefiner`), and
:func:`fake_plugin` to register any of them (or your own) as one plugin::

    source = FakeSource(drafts=[Draft(title="t", diff=diff)])
    async with open_core(tmp_path, plugins={"fakes": fake_plugin(source, FakePolicy())}) as core:
        result = await core.generate(REVIEWER)
        assert source.requests[0].repo_path == core.settings.repo_path

:func:`wait_until` waits for a condition with a deadline (never a fixed sleep).

Nothing here imports pytest; use it from any test runner on asyncio or trio.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from storykit.auth import Principal, Role
from storykit.backends import (
    Draft,
    GenerateRequest,
    Planner,
    Policy,
    PolicySubject,
    PRBackend,
    PRRequest,
    Refinement,
    Refiner,
    SuggestionSource,
)
from storykit.errors import Invalid
from storykit.hookspecs import hookimpl
from storykit.models import Finding, Outcome, PRResult, Suggestion, Variant
from storykit.plugins import get_plugin_manager
from storykit.services import Storykit
from storykit.settings import Settings

__all__ = [
    "ADMIN",
    "AGENT",
    "OTHER_AGENT",
    "OTHER_REVIEWER",
    "REVIEWER",
    "FakeBackend",
    "FakePlanner",
    "FakePolicy",
    "FakeRefiner",
    "FakeSource",
    "fake_plugin",
    "make_diff",
    "make_settings",
    "open_core",
    "tool_missing",
    "wait_until",
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


def wait_until(
    condition: Callable[[], object],
    *,
    what: str = "the condition",
    deadline: float = 20.0,
    interval: float = 0.05,
) -> None:
    """Poll ``condition`` (from synchronous code: a test thread, not an event loop)
    until it returns something true; fail after ``deadline`` seconds naming ``what``."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {deadline:g}s waiting for {what}")
        time.sleep(interval)  # polling, not synchronisation: the condition decides


# -- fakes ---------------------------------------------------------------------------


@dataclasses.dataclass
class FakeSource:
    """Proposes ``drafts``, reporting progress before and after; records each request."""

    drafts: Sequence[Draft] = ()
    name: str = "fake-source"
    requests: list[GenerateRequest] = dataclasses.field(default_factory=list)

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        self.requests.append(request)
        if request.progress is not None:
            await request.progress({"done": 0, "total": len(self.drafts)})
            await request.progress({"done": len(self.drafts), "total": len(self.drafts)})
        return list(self.drafts)


@dataclasses.dataclass
class FakePolicy:
    """Denies a diff whose added lines contain the configured ``word`` (one finding
    ``rule`` per such line); its configuration is ``{"word": …}``."""

    word: str = "forbidden"
    name: str = "deny-word"
    rule: str = "word"

    def default_config(self) -> Mapping[str, Any]:
        return {"word": self.word}

    def validate_config(self, config: Mapping[str, Any]) -> None:
        if not isinstance(config.get("word"), str) or not config["word"]:
            raise Invalid("word must be a non-empty string")

    async def check(self, subject: PolicySubject, config: Mapping[str, Any]) -> Sequence[Finding]:
        word = config["word"]
        return [
            Finding(
                rule=self.rule,
                message=f"added line contains {word!r}",
                severity=Outcome.DENY,
                policy=self.name,
            )
            for line in subject.diff.splitlines()
            if line.startswith("+") and not line.startswith("+++") and word in line
        ]


@dataclasses.dataclass
class FakePlanner:
    """One variant, ``all``, of every suggestion in the order given (the core derives
    its diff, conflicts and risk)."""

    name: str = "fake-planner"
    goals: list[str] = dataclasses.field(default_factory=list)

    async def plan(self, goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        self.goals.append(goal)
        ids = tuple(s.id for s in suggestions)
        return [Variant(key="all", title=f"All for {goal}", suggestion_ids=ids)]


@dataclasses.dataclass
class FakeBackend:
    """A PR backend that records each request and changes nothing; a real (not dry)
    run answers as if it had pushed a branch and opened a pull request."""

    name: str = "fake-pr"
    capabilities: frozenset[str] = frozenset({"push", "pull_request"})
    requests: list[PRRequest] = dataclasses.field(default_factory=list)

    async def open(self, request: PRRequest) -> PRResult:
        self.requests.append(request)
        real = not request.dry_run
        return PRResult(
            backend=self.name,
            branch=request.branch,
            diff=request.variant.diff,
            dry_run=request.dry_run,
            operations=(f"git switch -c {request.branch}", "git apply", "git commit"),
            commit="0123abcd" if real else None,
            url=f"https://forge.invalid/pulls/{len(self.requests)}" if real else None,
            plan_id=request.plan_id,
            variant=request.variant.key,
        )


@dataclasses.dataclass
class FakeRefiner:
    """Answers with ``diff`` (``None``: keep the diff) and the instructions as rationale."""

    diff: str | None = None
    name: str = "fake-refiner"
    calls: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    async def refine(self, suggestion: Suggestion, instructions: str) -> Refinement:
        self.calls.append((suggestion.id, instructions))
        return Refinement(diff=self.diff, rationale=instructions or None)


_HOOKS: tuple[tuple[type, str], ...] = (
    (PRBackend, "storykit_register_pr_backends"),  # before SuggestionSource: both "name"
    (SuggestionSource, "storykit_register_sources"),
    (Policy, "storykit_register_policies"),
    (Planner, "storykit_register_planners"),
    (Refiner, "storykit_register_refiners"),
)


def fake_plugin(*backends: object) -> object:
    """A plugin object registering each of ``backends`` through the hook of its kind
    (told by the methods it has: ``generate``, ``check``, ``plan``, ``open``,
    ``refine``), for ``open_core(…, plugins={"name": fake_plugin(…)})``."""
    by_hook: dict[str, list[object]] = {}
    for backend in backends:
        hook = next((h for kind, h in _HOOKS if isinstance(backend, kind)), None)
        if hook is None:
            raise TypeError(f"{backend!r} is no source, policy, planner, PR backend or refiner")
        by_hook.setdefault(hook, []).append(backend)

    def registrar(found: list[object]) -> Callable[..., None]:
        def register_all(register: Callable[[Any], None]) -> None:
            for backend in found:
                register(backend)

        return hookimpl(register_all)

    namespace = {hook: staticmethod(registrar(found)) for hook, found in by_hook.items()}
    return type("FakePlugin", (), namespace)()
