"""PR backend ``dry-run``: what the ``git`` backend would do, without doing it.

It returns the branch name, the exact diff that would be committed, and the
operations, graded by ``STORYKIT_DRYRUN_DETAIL``:

- ``policy``: what a reviewer decides on: base, branch, suggestions, approvers,
  push target, and the checks below;
- ``diff``: that, plus one line per file changed (``M path (+3 -1)``);
- ``full`` (default): that, plus every git command the ``git`` backend would run,
  in order, exactly as it would run them; only the temporary folder's random
  name differs (shown as ``pr-XXXXXXXX``), and the diff is written to
  ``variant.patch`` in that folder before ``git apply``.

Lines that are not commands start with ``# ``. The checks are read-only: the
branch name is valid and free, the base exists, and the diff applies to the base
(``git apply --check`` against a throwaway index). A failed check is reported as
a ``# check failed: …`` line, not an error, so the preview is still shown.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from storykit.backends import PRBackend, PRRequest
from storykit.diffs import parse_diff_async
from storykit.errors import Invalid, StorykitError
from storykit.hookspecs import hookimpl
from storykit.models import PRResult
from storykit.settings import Settings
from storykit_plugins._git import check_branch_name, repo_root, resolve_commit, run_git
from storykit_plugins._git_pr import (
    PRCommands,
    approvers,
    check_applies,
    commit_message,
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
    """The dry-run result for ``request``."""
    ops: list[str] = []
    if detail not in DETAIL_LEVELS:
        ops.append(f"# unknown STORYKIT_DRYRUN_DETAIL {detail!r}; showing 'full'")
        detail = "full"
    diff = request.variant.diff
    checks, repo, base = await _checks(request)
    suggestions = variant_suggestions(request)
    names = approvers(suggestions)
    ops.append(f"# base: {request.base_ref}" + (f" ({base})" if base else ""))
    ops.append(f"# branch: {request.branch} (new)")
    ids = ", ".join(request.variant.suggestion_ids) or "none"
    ops.append(f"# commit: {len(request.variant.suggestion_ids)} suggestion(s): {ids}")
    ops.append(f"# approved by: {', '.join(names) if names else 'nobody (no current approval)'}")
    ops.append(f"# push: {request.branch} to {remote}" if remote else "# push: none (no remote)")
    ops.extend(checks)
    if detail in ("diff", "full"):
        ops.extend(await _file_lines(diff))
    if detail == "full":
        commands = PRCommands(
            repo=repo or request.repo_path,
            base=base or request.base_ref,
            branch=request.branch,
            message=commit_message(request),
            scratch=request.work_dir / "pr-XXXXXXXX",
            remote=remote,
        )
        ops.append(f"# write the diff to {commands.patch}")
        ops.extend(render(step) for step in commands.sequence())
    return PRResult(
        backend=backend,
        branch=request.branch,
        diff=diff,
        dry_run=True,
        operations=tuple(ops),
        plan_id=request.plan_id,
        variant=request.variant.key,
    )


async def _checks(request: PRRequest) -> tuple[list[str], Path | None, str | None]:
    """Check lines, the repository root and the base commit (None where unknown)."""
    try:
        repo = await repo_root(request.repo_path)
    except StorykitError as exc:
        return [f"# check failed: {exc.detail}"], None, None
    out: list[str] = []
    try:
        await check_branch_name(repo, request.branch)
    except Invalid as exc:
        out.append(f"# check failed: {exc.detail}")
    else:
        exists = await run_git(
            ["show-ref", "--verify", "--quiet", f"refs/heads/{request.branch}"], cwd=repo
        )
        if exists.ok:
            out.append(f"# check failed: branch {request.branch!r} already exists")
    try:
        base = await resolve_commit(repo, request.base_ref)
    except Invalid as exc:
        return [*out, f"# check failed: {exc.detail}"], repo, None
    if not request.variant.diff.strip():
        out.append("# check failed: the variant has no changes to commit")
    else:
        problem = await check_applies(repo, base, request.variant.diff, request.work_dir)
        if problem is None:
            out.append(f"# check: the diff applies cleanly to {base[:12]}")
        else:
            out.append(f"# check failed: the diff does not apply to {base[:12]}: {problem}")
    return out, repo, base


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
