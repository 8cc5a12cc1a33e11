"""A throwaway storykit plugin for the dashboard's browser tests and screenshots.

It gives the real server deterministic backends of every kind, so the browser tests
assert what the dashboard shows rather than what first-party plugins happen to do:

- source ``uitest-src``: proposes one suggestion per run, reporting progress;
- planner ``uitest-planner``: variants "all", "low-risk" and "first" (the core combines
  their diffs, with conflicts where two suggestions change the same lines);
- PR backends ``dry-run`` (says what it would do) and ``uitest-forge`` (pretends to
  open pull request ``acme/app#<n>`` and returns its URL; it follows it through the
  ``github`` webhook route, reading GitHub-shaped deliveries as the ``github`` backend does);
- policy ``uitest-words``: regex rules over added lines (deny ``rm -rf`` and private
  keys, warn ``verify=False`` and ``TODO``);
- refiner ``uitest-refiner``, only when ``STORYKIT_UITEST_REFINER=1``.

``STORYKIT_UITEST_KINDS`` (comma separated: sources, planners, pr, policies) limits
what it registers, so it can fill in beside first-party plugins.
The harness puts it on ``PYTHONPATH`` with a ``.dist-info`` naming its entry point.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from storykit.backends import (
    Draft,
    GenerateRequest,
    PolicySubject,
    PRRequest,
    PRUpdate,
    Refinement,
)
from storykit.diffs import parse_diff
from storykit.errors import Invalid
from storykit.hookspecs import hookimpl
from storykit.models import Finding, Outcome, PRResult, PullRequest, Risk, Suggestion, Variant
from storykit.settings import Settings
from storykit_plugins.pr_github import webhook_updates

_runs = itertools.count(1)
_prs = itertools.count(1)
STEP = 0.15  # the source's pretend work per step, so its progress is visible


def _kinds(settings: Settings) -> set[str]:
    raw = settings.get("STORYKIT_UITEST_KINDS") or "sources,planners,pr,policies"
    return {k.strip() for k in raw.split(",") if k.strip()}


class UitestSource:
    name = "uitest-src"

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        run = next(_runs)
        files = list(request.paths) or ["hello.py"]
        total = 3
        for done in range(total + 1):
            if request.progress is not None:
                await request.progress({"stage": "scanning", "done": done, "total": total})
            if done < total:
                await anyio.sleep(STEP)
        return [
            Draft(
                title=f"Generated: tidy {files[0]} (run {run})",
                diff=(
                    f"diff --git a/{files[0]} b/{files[0]}\n--- a/{files[0]}\n+++ b/{files[0]}\n"
                    f"@@ -1,2 +1,2 @@\n-print('hello')\n+print('hello', flush=True)\n x = 1\n"
                ),
                rationale="Flush so the greeting shows up before a crash.",
            )
        ]


def _variant(key: str, title: str, chosen: Sequence[Suggestion]) -> Variant:
    return Variant(key=key, title=title, suggestion_ids=tuple(s.id for s in chosen))


class UitestPlanner:
    name = "uitest-planner"

    async def plan(self, goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        low = [s for s in suggestions if s.risk is Risk.LOW] or list(suggestions[:1])
        return [
            _variant("all", "One branch for everything", suggestions),
            _variant("low-risk", "Low-risk changes only", low),
            _variant("first", "Smallest first step", suggestions[:1]),
        ]


def _operations(request: PRRequest) -> tuple[str, ...]:
    files = parse_diff(request.variant.diff).files if request.variant.diff.strip() else ()
    return (
        f"git worktree add --detach {request.work_dir}/{request.plan_id} {request.base_ref}",
        f"git switch -c {request.branch}",
        f"git apply --index ({len(files)} file{'s' if len(files) != 1 else ''})",
        f"git commit -m {request.goal!r}",
    )


class UitestDryRun:
    name = "dry-run"
    capabilities: frozenset[str] = frozenset()

    async def open(self, request: PRRequest) -> PRResult:
        return PRResult(
            backend=self.name,
            branch=request.branch,
            diff=request.variant.diff,
            dry_run=True,
            operations=(*_operations(request), f"git push origin {request.branch}  (not run)"),
            plan_id=request.plan_id,
            variant=request.variant.key,
        )


class UitestForge:
    name = "uitest-forge"
    capabilities = frozenset({"push", "pull_request"})
    webhook = "github"

    def webhook_updates(self, event: str, payload: Mapping[str, Any]) -> Sequence[PRUpdate]:
        return webhook_updates(event, payload)

    async def poll(self, pr: PullRequest) -> PRUpdate:
        return PRUpdate(repository=pr.repository, number=pr.number)  # nothing new

    async def open(self, request: PRRequest) -> PRResult:
        number = next(_prs)
        return PRResult(
            backend=self.name,
            branch=request.branch,
            diff=request.variant.diff,
            dry_run=False,
            operations=(*_operations(request), f"git push origin {request.branch}", "open PR"),
            commit=f"{number:07x}0c0ffee",
            url=f"https://forge.example/acme/app/pull/{number}",
            plan_id=request.plan_id,
            variant=request.variant.key,
            number=number,
            repository="acme/app",
        )


class UitestWords:
    """A risk-regex style policy: rules of id, pattern, severity, message."""

    name = "uitest-words"

    def default_config(self) -> Mapping[str, Any]:
        return {
            "rules": [
                {
                    "id": "no-rm-rf",
                    "pattern": r"rm\s+-rf",
                    "severity": "deny",
                    "message": "deletes files recursively",
                },
                {
                    "id": "private-key",
                    "pattern": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
                    "severity": "deny",
                    "message": "adds a private key",
                },
                {
                    "id": "tls-verify",
                    "pattern": r"verify\s*=\s*False",
                    "severity": "warn",
                    "message": "turns off TLS certificate verification",
                },
                {
                    "id": "todo",
                    "pattern": r"\bTODO\b",
                    "severity": "warn",
                    "message": "leaves a TODO behind",
                },
            ]
        }

    def validate_config(self, config: Mapping[str, Any]) -> None:
        rules = config.get("rules")
        if not isinstance(rules, list):
            raise Invalid("rules must be a list")
        for index, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                raise Invalid(f"rule {index}: must be an object")
            name = rule.get("id", index)
            try:
                re.compile(str(rule.get("pattern", "")))
            except re.error as exc:
                raise Invalid(
                    f"rule {name!r}: pattern is not a valid regular expression: {exc}"
                ) from None
            if rule.get("severity") not in ("allow", "warn", "deny"):
                raise Invalid(f"rule {name!r}: severity must be allow, warn or deny")

    async def check(self, subject: PolicySubject, config: Mapping[str, Any]) -> Sequence[Finding]:
        found = []
        rules = [(r, re.compile(str(r["pattern"]))) for r in config.get("rules", [])]
        for line in parse_diff(subject.diff).added_lines():
            for rule, pattern in rules:
                if pattern.search(line.text):
                    found.append(
                        Finding(
                            rule=f"{self.name}:{rule['id']}",
                            message=str(rule.get("message") or rule["id"]),
                            severity=Outcome(rule["severity"]),
                            policy=self.name,
                            file=line.file,
                            line=line.line,
                        )
                    )
        return found


class UitestRefiner:
    name = "uitest-refiner"

    async def refine(self, suggestion: Suggestion, instructions: str) -> Refinement:
        note = instructions or "clearer"
        return Refinement(rationale=f"{suggestion.rationale}\n\nRefined: {note}")


@hookimpl
def storykit_register_sources(register: Any, settings: Settings) -> None:
    if "sources" in _kinds(settings):
        register(UitestSource())


@hookimpl
def storykit_register_planners(register: Any, settings: Settings) -> None:
    if "planners" in _kinds(settings):
        register(UitestPlanner())


@hookimpl
def storykit_register_pr_backends(register: Any, settings: Settings) -> None:
    if "pr" in _kinds(settings):
        register(UitestDryRun())
        register(UitestForge())


@hookimpl
def storykit_register_policies(register: Any, settings: Settings) -> None:
    if "policies" in _kinds(settings):
        register(UitestWords())


@hookimpl
def storykit_register_refiners(register: Any, settings: Settings) -> None:
    if settings.get("STORYKIT_UITEST_REFINER") == "1":
        register(UitestRefiner())
