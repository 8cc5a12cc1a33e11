"""Plugins for the CLI tests: a source that reports progress, a planner, PR backends, a
policy and (on request) a refiner. Loaded through a real ``storykit`` entry point (the
tests write its dist-info), in the CLI's process and in a server's, like any plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from storykit.backends import Draft, GenerateRequest, PRRequest, Refinement
from storykit.hookspecs import hookimpl
from storykit.models import PRResult, Risk, Suggestion, Variant
from storykit.settings import Settings
from storykit.testing import FakePolicy, make_diff

FILES = ("a.py", "b.py")


class FakeSource:
    """Proposes appending a comment to each of FILES (or the paths asked for)."""

    name = "fake"

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        paths = request.paths or FILES
        drafts = []
        for done, path in enumerate(paths, start=1):
            old = (Path(request.repo_path) / path).read_text(encoding="utf-8")
            drafts.append(
                Draft(
                    title=f"Mark {path} as reviewed",
                    diff=make_diff(path, old, old + "# reviewed\n"),
                    rationale="The file was read by the fake source.",
                )
            )
            if request.progress is not None:
                await request.progress({"done": done, "total": len(paths), "stage": "scan"})
        return drafts


class BrokenSource:
    name = "broken"

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        raise RuntimeError("the broken source broke")


class FakePlanner:
    name = "fake-planner"

    async def plan(self, goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        ids = tuple(s.id for s in suggestions)
        return [
            Variant(
                key="all",
                title="Everything in one branch",
                suggestion_ids=ids,
                diff="".join(s.diff for s in suggestions),
                risk=Risk.LOW,
            ),
            Variant(
                key="first",
                title="Only the first suggestion",
                suggestion_ids=ids[:1],
                diff=suggestions[0].diff,
                risk=Risk.LOW,
            ),
        ]


class FakePR:
    capabilities = frozenset({"push", "pull_request"})

    def __init__(self, name: str) -> None:
        self.name = name

    async def open(self, request: PRRequest) -> PRResult:
        return PRResult(
            backend=self.name,
            branch=request.branch,
            diff=request.variant.diff,
            dry_run=request.dry_run,
            operations=(f"create branch {request.branch}", "apply the diff", "commit"),
            commit=None if request.dry_run else "0123abcd",
            url=None if request.dry_run else "https://forge.invalid/pulls/1",
            plan_id=request.plan_id,
            variant=request.variant.key,
        )


class FakeRefiner:
    name = "fake-llm"

    async def refine(self, suggestion: Suggestion, instructions: str) -> Refinement:
        return Refinement(title=suggestion.title + " (refined)", rationale=instructions or None)


@hookimpl
def storykit_register_sources(register: Callable[[Any], None], settings: Settings) -> None:
    register(FakeSource())
    if settings.get("CLI_FAKES_BROKEN"):
        register(BrokenSource())


@hookimpl
def storykit_register_planners(register: Callable[[Any], None]) -> None:
    register(FakePlanner())


@hookimpl
def storykit_register_pr_backends(register: Callable[[Any], None]) -> None:
    register(FakePR("dry-run"))
    register(FakePR("fake-pr"))


@hookimpl
def storykit_register_policies(register: Callable[[Any], None]) -> None:
    register(FakePolicy(word="FORBIDDEN", rule="deny-word.found"))


@hookimpl
def storykit_register_refiners(register: Callable[[Any], None], settings: Settings) -> None:
    if settings.get("CLI_FAKES_REFINER"):
        register(FakeRefiner())
