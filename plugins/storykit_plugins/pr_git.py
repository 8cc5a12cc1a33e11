"""PR backend ``git``: the selected variant as one commit on a new local branch, optionally pushed.

Everything happens in a separate, detached ``git worktree`` under the request's
``work_dir``; the user's working tree, index and ``HEAD`` are never touched. In
order: add the worktree at the base commit, ``git apply --3way --index`` the
variant's diff, commit once as ``storykit <storykit@localhost>`` (the goal as
subject, the variant and its suggestions in the body, ``Suggestion-Id:`` and
``Approved-by:`` trailers), create the branch at that commit, push it to
``STORYKIT_GIT_REMOTE`` if set, and remove the worktree, also when a step fails.

A branch name the caller chose (``PRRequest.branch_given``) that already exists is
refused (409): silently choosing another would hide that. storykit's default name
gets the first free ``-2``, ``-3``, … suffix instead, and the operations say so.
When the diff does not apply, nothing is left behind (409, with git's reason, the
suggestions that do not apply on their own and what to do). When the push fails,
the new local branch is deleted again so that a retry starts from the same state (502).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.to_thread

from storykit.backends import PRBackend, PRRequest
from storykit.errors import BackendError, Conflict, Invalid
from storykit.hookspecs import hookimpl
from storykit.models import PRResult
from storykit.settings import Settings
from storykit_plugins._git import git_ok, run_git, summarize
from storykit_plugins._git_pr import PRCommands, commit_message, does_not_apply, prepare, render
from storykit_plugins.pr_dryrun import preview

__all__ = ["GitBackend", "storykit_register_pr_backends"]


class GitBackend:
    name = "git"

    def __init__(self, *, remote: str | None = None, detail: str = "full") -> None:
        if remote is not None and (not remote or remote.startswith("-")):
            raise Invalid(f"STORYKIT_GIT_REMOTE={remote!r} is not a remote name or URL")
        self.remote = remote
        self.detail = detail
        self.capabilities: frozenset[str] = frozenset({"push"}) if remote else frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> GitBackend:
        return cls(
            remote=(settings.get("STORYKIT_GIT_REMOTE") or "").strip() or None,
            detail=(settings.get("STORYKIT_DRYRUN_DETAIL") or "full").strip().lower(),
        )

    async def open(self, request: PRRequest) -> PRResult:
        if request.dry_run:
            return await preview(request, detail=self.detail, remote=self.remote)
        target = await prepare(request)
        await anyio.Path(request.work_dir).mkdir(parents=True, exist_ok=True)
        scratch = Path(
            await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp("", "pr-", request.work_dir))
        )
        commands = PRCommands(
            repo=target.repo,
            base=target.base,
            branch=target.branch,
            message=commit_message(request),
            scratch=scratch,
            remote=self.remote,
        )
        try:
            commit = await self._commit(request, commands)
        finally:
            with anyio.CancelScope(shield=True):
                await _remove_worktree(commands)
                await anyio.to_thread.run_sync(shutil.rmtree, scratch, True)
        if self.remote:
            await self._push(commands, commit)
        note = [f"# branch {target.branch} ({target.note})"] if target.note else []
        return PRResult(
            backend=self.name,
            branch=target.branch,
            diff=request.variant.diff,
            dry_run=False,
            operations=(*note, *(render(step) for step in commands.sequence())),
            commit=commit,
            plan_id=request.plan_id,
            variant=request.variant.key,
        )

    async def _commit(self, request: PRRequest, commands: PRCommands) -> str:
        """Apply and commit in a fresh worktree, create the branch; the new commit's id."""
        repo = commands.repo
        await git_ok(commands.worktree_add(), cwd=repo, what="git worktree add")
        await anyio.Path(commands.patch).write_text(
            request.variant.diff, encoding="utf-8", newline=""
        )
        applied = await run_git(commands.apply(), cwd=repo)
        if not applied.ok:
            raise await does_not_apply(request, repo, commands.base, summarize(applied.stderr))
        await git_ok(commands.commit(), cwd=repo, what="git commit")
        made = await run_git(commands.create_branch(), cwd=repo)
        if not made.ok:
            # Someone made the branch since the check above.
            raise Conflict(f"could not create branch {commands.branch!r}: {summarize(made.stderr)}")
        head = await git_ok(commands.head(), cwd=repo, what="git rev-parse")
        return head.decode().strip()

    async def _push(self, commands: PRCommands, commit: str) -> None:
        pushed = await run_git(commands.push(), cwd=commands.repo)
        if pushed.ok:
            return
        # Leave no half-done state: delete the branch, but only if it is still ours.
        await run_git(
            ["update-ref", "-d", f"refs/heads/{commands.branch}", commit], cwd=commands.repo
        )
        raise BackendError(
            f"pushing {commands.branch!r} to {commands.remote!r} failed: {summarize(pushed.stderr)}"
        )


async def _remove_worktree(commands: PRCommands) -> None:
    link = anyio.Path(commands.tree / ".git")
    if not await link.is_file():
        return  # never added (git cleans up a failed ``worktree add`` itself)
    # "gitdir: <repo>/.git/worktrees/<name>": git's record of this worktree.
    admin = Path((await link.read_text()).partition("gitdir:")[2].strip())
    removed = await run_git(commands.worktree_remove(), cwd=commands.repo)
    if not removed.ok:
        # Delete just this worktree and its record; ``git worktree prune`` would also
        # forget the user's own worktrees that happen to be unreachable right now.
        await anyio.to_thread.run_sync(shutil.rmtree, commands.tree, True)
        if admin.parent.name == "worktrees":
            await anyio.to_thread.run_sync(shutil.rmtree, admin, True)


@hookimpl
def storykit_register_pr_backends(
    register: Callable[[PRBackend], None], settings: Settings
) -> None:
    """Register the ``git`` backend; it can push when ``STORYKIT_GIT_REMOTE`` is set."""
    register(GitBackend.from_settings(settings))
