"""PR backend ``dry-run``: what the ``git`` backend would do, without doing it.

It returns the branch name, the exact diff that would be committed, and the
operations, graded by ``STORYKIT_DRYRUN_DETAIL``:

- ``policy``: what a reviewer decides on: base, branch, suggestions, approvers,
  push target, and that the diff applies (see below);
- ``diff``: that, plus one line per file changed (``M path (+3 -1)``);
- ``full`` (default): that, plus every git command the ``git`` backend would run,
  in order, exactly as it would run them; only the temporary folder's random
  name differs (shown as ``pr-XXXXXXXX``), and the diff is written to
  ``variant.patch`` in that folder before ``git apply``.

Lines that are not commands start with ``# ``.

A dry run fails exactly where the ``git`` backend's real run would, with the same
error, and changes nothing: the variant has no changes (422), the repository is
not a git repository (502), the base or the branch name is not valid (422), a branch
name the caller chose exists (409), or the diff does not apply to the base (409,
with git's reason, the suggestions that do not apply on their own and what to do).
The apply check runs ``git apply --3way`` against a throwaway index and object
directory, as the real run does in its worktree. storykit's default branch name
gets a ``-2``, ``-3``, … suffix when it is taken, and the ``# branch:`` line says so.
"""

from __future__ import annotations

from collections.abc import Callable

from storykit.backends import PRBackend, PRRequest
from storykit.diffs import parse_diff_async
from storykit.errors import Invalid
from storykit.hookspecs import hookimpl
from storykit.models import PRResult
from storykit.settings import Settings
from storykit_plugins._git_pr import (
    PRCommands,
    approvers,
    check_applies,
    commit_message,
    does_not_apply,
    prepare,
    render,
    variant_suggestions,
)

__all__ = ["DETAIL_LEVELS", "DryRunBackend", "preview", "storykit_register_pr_backends"]

DETAIL_LEVELS = ("policy", "diff", "full")


class DryRunBackend:
    name = "dry-run"
    capabilities: frozenset[str] = frozenset()

    def __init__(self, *, detail: str = "full", remote: str | None = None) -> None:
        self.detail = detail
        self.remote = remote

    @classmethod
    def from_settings(cls, settings: Settings) -> DryRunBackend:
        return cls(
            detail=(settings.get("STORYKIT_DRYRUN_DETAIL") or "full").strip().lower(),
            remote=(settings.get("STORYKIT_GIT_REMOTE") or "").strip() or None,
        )

    async def open(self, request: PRRequest) -> PRResult:
        return await preview(request, detail=self.detail, remote=self.remote, backend=self.name)


async def preview(
    request: PRRequest, *, detail: str, remote: str | None, backend: str = "dry-run"
) -> PRResult:
    """The dry-run result for ``request``, or the error its real run would raise."""
    ops: list[str] = []
    if detail not in DETAIL_LEVELS:
        ops.append(f"# unknown STORYKIT_DRYRUN_DETAIL {detail!r}; showing 'full'")
        detail = "full"
    diff = request.variant.diff
    target = await prepare(request)
    problem = await check_applies(target.repo, target.base, diff, request.work_dir)
    if problem is not None:
        raise await does_not_apply(request, target.repo, target.base, problem)
    suggestions = variant_suggestions(request)
    names = approvers(suggestions)
    ops.append(f"# base: {_base_line(request.base_ref, target.base)}")
    note = f"; {target.note}" if target.note else ""
    ops.append(f"# branch: {target.branch} (new{note})")
    ids = ", ".join(request.variant.suggestion_ids) or "none"
    ops.append(f"# commit: {len(request.variant.suggestion_ids)} suggestion(s): {ids}")
    ops.append(f"# approved by: {', '.join(names) if names else 'nobody (no current approval)'}")
    ops.append(f"# push: {target.branch} to {remote}" if remote else "# push: none (no remote)")
    ops.append(f"# check: the diff applies cleanly to {target.base[:12]}")
    if detail in ("diff", "full"):
        ops.extend(await _file_lines(diff))
    if detail == "full":
        commands = PRCommands(
            repo=target.repo,
            base=target.base,
            branch=target.branch,
            message=commit_message(request),
            scratch=request.work_dir / "pr-XXXXXXXX",
            remote=remote,
        )
        ops.append(f"# write the diff to {commands.patch}")
        ops.extend(render(step) for step in commands.sequence())
    return PRResult(
        backend=backend,
        branch=target.branch,
        diff=diff,
        dry_run=True,
        operations=tuple(ops),
        plan_id=request.plan_id,
        variant=request.variant.key,
    )


def _base_line(ref: str, commit: str) -> str:
    """``main (1a2b…)``; a ref that is (an abbreviation of) the commit id is shown once."""
    is_id = len(ref) >= 4 and all(c in "0123456789abcdef" for c in ref.lower())
    return commit if is_id and commit.startswith(ref.lower()) else f"{ref} ({commit})"


async def _file_lines(diff: str) -> list[str]:
    if not diff.strip():
        return []
    try:
        parsed = await parse_diff_async(diff)
    except Invalid as exc:
        return [f"# check failed: {exc.detail}"]
    out = []
    for pf in parsed.patch:
        if pf.is_added_file:
            kind = "A"
        elif pf.is_removed_file:
            kind = "D"
        elif pf.is_rename:
            kind = "R"
        else:
            kind = "M"
        out.append(f"# {kind} {pf.path} (+{pf.added} -{pf.removed})")
    return out


@hookimpl
def storykit_register_pr_backends(
    register: Callable[[PRBackend], None], settings: Settings
) -> None:
    """Register the ``dry-run`` backend (always: dry runs are the default)."""
    register(DryRunBackend.from_settings(settings))
