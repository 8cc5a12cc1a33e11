"""The git commands a PR run performs, shared by the ``git`` and ``dry-run`` backends.

Both backends build their command lines here, so what a dry run lists is what a
real run executes. The branch is created only after the commit exists, from
the detached worktree's ``HEAD``: if applying or committing fails there is no
branch to clean up.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.to_thread

from storykit.backends import PRRequest
from storykit.errors import Conflict, Invalid
from storykit.models import Suggestion
from storykit_plugins._git import (
    check_branch_name,
    git_ok,
    repo_root,
    resolve_commit,
    run_git,
    summarize,
)

__all__ = [
    "IDENTITY",
    "PRCommands",
    "Target",
    "approvers",
    "check_applies",
    "check_each_applies",
    "commit_message",
    "does_not_apply",
    "pick_branch",
    "prepare",
    "render",
    "variant_suggestions",
]

IDENTITY = ("storykit", "storykit@localhost")
# The user's hooks are not run: storykit works unattended, and hooks can prompt,
# take minutes, or rewrite what was reviewed. Pointing hooksPath at a file means
# git finds no hook at all.
_NO_HOOKS = ("-c", f"core.hooksPath={os.devnull}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def variant_suggestions(request: PRRequest) -> list[Suggestion]:
    """The request's suggestions that the variant includes, in the variant's order."""
    by_id = {s.id: s for s in request.suggestions}
    return [by_id[i] for i in request.variant.suggestion_ids if i in by_id]


def approvers(suggestions: Sequence[Suggestion]) -> list[str]:
    """Everyone whose approval still counts (given to the current diff), first seen first."""
    names = (_one_line(r.reviewer) for s in suggestions for r in s.approvals)
    return list(dict.fromkeys(n for n in names if n))


def commit_message(request: PRRequest) -> str:
    """Subject from the goal, a body naming the variant, and trailers for the audit trail."""
    goal_lines = [line.strip() for line in request.goal.strip().splitlines()]
    subject = _one_line(goal_lines[0]) if goal_lines else ""
    variant = request.variant
    suggestions = variant_suggestions(request)
    body = [f"Variant: {_one_line(variant.title)} ({variant.key})", f"Plan: {request.plan_id}"]
    rest = "\n".join(goal_lines[1:]).strip()
    if rest:
        body = [rest, "", *body]
    if suggestions:
        body.append("")
        body.extend(f"- {_one_line(s.title)} ({s.id})" for s in suggestions)
    trailers = [f"Suggestion-Id: {sid}" for sid in variant.suggestion_ids]
    trailers += [f"Approved-by: {name}" for name in approvers(suggestions)]
    parts = [subject or _one_line(variant.title) or "storykit change", "\n".join(body)]
    if trailers:
        parts.append("\n".join(trailers))
    return "\n\n".join(parts) + "\n"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PRCommands:
    """Every command of one PR run; ``scratch`` is a folder inside storykit's work dir."""

    repo: Path
    base: str
    branch: str
    message: str
    scratch: Path
    remote: str | None = None

    @property
    def tree(self) -> Path:
        return self.scratch / "tree"

    @property
    def patch(self) -> Path:
        return self.scratch / "variant.patch"

    def worktree_add(self) -> list[str]:
        add = ["worktree", "add", "--detach", "--quiet", str(self.tree), self.base]
        return ["-C", str(self.repo), *_NO_HOOKS, *add]

    def apply(self) -> list[str]:
        apply = ["apply", "--3way", "--index", "--whitespace=nowarn", str(self.patch)]
        return ["-C", str(self.tree), *apply]

    def commit(self) -> list[str]:
        name, email = IDENTITY
        config = ["-c", f"user.name={name}", "-c", f"user.email={email}"]
        config += ["-c", "commit.gpgsign=false", *_NO_HOOKS]
        commit = ["commit", "--quiet", "--no-verify", "--cleanup=whitespace", "-m", self.message]
        return ["-C", str(self.tree), *config, *commit]

    def head(self) -> list[str]:
        return ["-C", str(self.tree), "rev-parse", "--verify", "HEAD"]

    def create_branch(self, commit: str = "HEAD") -> list[str]:
        # Run in the worktree so HEAD is the new commit; refuses a branch that exists.
        return ["-C", str(self.tree), "branch", "--no-track", "--", self.branch, commit]

    def push(self) -> list[str]:
        ref = f"refs/heads/{self.branch}"
        push = ["push", "--quiet", "--", str(self.remote), f"{ref}:{ref}"]
        return ["-C", str(self.repo), *_NO_HOOKS, *push]

    def worktree_remove(self) -> list[str]:
        return ["-C", str(self.repo), "worktree", "remove", "--force", str(self.tree)]

    def sequence(self) -> list[list[str]]:
        """In order, as the ``git`` backend runs them (the patch is written before ``apply``)."""
        steps = [self.worktree_add(), self.apply(), self.commit(), self.create_branch()]
        if self.remote:
            steps.append(self.push())
        steps.append(self.worktree_remove())
        return steps


def render(args: Sequence[str]) -> str:
    """A command line someone could paste into a shell."""
    return shlex.join(["git", *args])


async def check_applies(repo: Path, base: str, diff: str, work_dir: Path) -> str | None:
    """None if ``diff`` applies to commit ``base`` as the PR backends apply it
    (``git apply --3way``, so a diff made on an older commit that merges cleanly
    passes), else git's reason."""
    (found,) = await check_each_applies(repo, base, [diff], work_dir)
    return found


async def check_each_applies(
    repo: Path, base: str, diffs: Sequence[str], work_dir: Path
) -> list[str | None]:
    """:func:`check_applies` for each of ``diffs`` on its own, reading ``base`` once.

    Uses throwaway indexes and a throwaway object directory in ``work_dir``, reading the
    repository's objects through the alternates list: neither the user's index, any
    working tree nor the repository's object database is written.
    """
    await anyio.Path(work_dir).mkdir(parents=True, exist_ok=True)
    scratch = Path(await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp("", "check-", work_dir)))
    try:
        objects = await git_ok(
            ["rev-parse", "--path-format=absolute", "--git-path", "objects"],
            cwd=repo,
            what="git rev-parse",
        )
        await anyio.Path(scratch / "objects").mkdir()
        env = {
            "GIT_OBJECT_DIRECTORY": str(scratch / "objects"),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects.decode().strip(),
        }
        base_index = scratch / "base.index"
        await git_ok(
            ["read-tree", base],
            cwd=repo,
            env=env | {"GIT_INDEX_FILE": str(base_index)},
            what="git read-tree",
        )
        found: list[str | None] = []
        patch, index = scratch / "variant.patch", scratch / "index"
        for diff in diffs:
            await anyio.Path(patch).write_text(diff, encoding="utf-8", newline="")
            await anyio.to_thread.run_sync(shutil.copyfile, base_index, index)  # a fresh base
            result = await run_git(
                ["apply", "--3way", "--cached", "--whitespace=nowarn", str(patch)],
                cwd=repo,
                env=env | {"GIT_INDEX_FILE": str(index)},
            )
            found.append(None if result.ok else summarize(result.stderr))
        return found
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, scratch, True)


async def does_not_apply(request: PRRequest, repo: Path, base: str, reason: str) -> Conflict:
    """The error for a variant whose diff does not apply to ``base``: git's reason, which
    suggestions fail on their own (checked only now, on the failure path), and what to do."""
    suggestions = variant_suggestions(request)
    found = await check_each_applies(repo, base, [s.diff for s in suggestions], request.work_dir)
    culprits = [s.id for s, problem in zip(suggestions, found, strict=True) if problem]
    ref = request.base_ref
    if culprits:
        names = ", ".join(culprits)
        verb = "does" if len(culprits) == 1 else "do"
        advice = (
            f"suggestion {names} {verb} not apply on its own: ask its proposer for a revision"
            f" made against {ref} (or reject it), then make a new plan"
        )
    else:
        advice = f"revise the suggestions against {ref}, or make a new plan without some of them"
    return Conflict(
        f"the diff of variant {request.variant.key!r} does not apply to {ref} ({base[:12]}):"
        f" {reason}; {advice}"
    )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """Where a run commits: the repository, the base commit and the branch to create."""

    repo: Path
    base: str
    branch: str
    note: str | None = None
    """Why ``branch`` is not the requested name (that one was taken), or None."""


async def prepare(request: PRRequest) -> Target:
    """The checks both the ``git`` backend and the dry run make before anything else, in
    the same order and with the same errors: the variant changes something, the
    repository and the base exist, and the branch name is valid and free."""
    if not request.variant.diff.strip():
        raise Invalid(f"variant {request.variant.key!r} has no changes to commit")
    repo = await repo_root(request.repo_path)
    base = await resolve_commit(repo, request.base_ref)
    branch, note = await pick_branch(repo, request)
    return Target(repo=repo, base=base, branch=branch, note=note)


MAX_SUFFIX = 99


async def pick_branch(repo: Path, request: PRRequest) -> tuple[str, str | None]:
    """The branch to create and, when it is not ``request.branch``, a note saying why.

    A name the caller chose is used exactly (409 if it exists); storykit's default name
    gets the first free ``-2``, ``-3``, … suffix when it is taken.
    """
    wanted = await check_branch_name(repo, request.branch)
    listed = await git_ok(
        [
            "for-each-ref",
            "--format=%(refname:lstrip=2)",
            f"refs/heads/{wanted}",
            f"refs/heads/{wanted}-*",
        ],
        cwd=repo,
        what="git for-each-ref",
    )
    taken = set(listed.decode("utf-8", "replace").splitlines())
    if wanted not in taken:
        return wanted, None
    if request.branch_given:
        raise Conflict(
            f"branch {wanted!r} already exists; choose another name (--branch in `storykit pr`,"
            " `branch` in POST /dev/pr-from-plan, Branch in the dashboard) or delete it"
        )
    for n in range(2, MAX_SUFFIX + 1):
        candidate = f"{wanted}-{n}"
        if candidate not in taken:
            if n == 2:
                return candidate, f"{wanted} already exists"
            before = [wanted, *(f"{wanted}-{i}" for i in range(2, n))]
            return candidate, f"{', '.join(before[:-1])} and {before[-1]} already exist"
    raise Conflict(
        f"branches {wanted!r} to '{wanted}-{MAX_SUFFIX}' all exist; choose another name"
        " (--branch in `storykit pr`, `branch` in POST /dev/pr-from-plan) or delete some"
    )
