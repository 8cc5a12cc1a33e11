"""The ``dry-run`` PR backend: the preview, its detail levels and its read-only checks."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from unidiff.patch import PatchSet

import storykit.diffs
import storykit_plugins.pr_dryrun as pr_dryrun_module
from storykit.backends import PRRequest
from storykit.errors import BackendError, Conflict, Invalid
from storykit.models import Suggestion, Variant
from storykit.plugins import Registry, get_plugin_manager
from storykit.settings import Settings
from storykit.testing import make_diff
from storykit_plugins.pr_dryrun import DryRunBackend

anyio = pytest.mark.anyio
Git = Callable[..., str]
FILES = {"lib/a.py": "x = 1\ny = 2\n", "b.py": "z = 3\n"}
DIFF = (
    "diff --git a/lib/a.py b/lib/a.py\n--- a/lib/a.py\n+++ b/lib/a.py\n"
    "@@ -1,2 +1,2 @@\n-x = 1\n+x = 10\n y = 2\n"
    "diff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n@@ -1 +1,2 @@\n z = 3\n+w = 4\n"
)


def _request(repo: Path, work: Path, diff: str = DIFF, *, branch: str = "sk/one") -> PRRequest:
    variant = Variant(key="dir:lib", title="Only lib/", suggestion_ids=("s1", "s2"), diff=diff)
    return PRRequest(
        repo_path=repo,
        plan_id="p1",
        goal="Make x bigger",
        variant=variant,
        suggestions=(),
        branch=branch,
        base_ref="main",
        dry_run=True,
        requested_by="carol",
        work_dir=work,
    )


def _registered(tmp_path: Path, env: dict[str, str]) -> DryRunBackend:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(pr_dryrun_module, name="dry-run")
    registry = Registry(pm, Settings.from_env(env, data_dir=tmp_path))
    backend = registry.pr_backends["dry-run"].backend
    assert isinstance(backend, DryRunBackend)
    return backend


def test_registered_with_no_capabilities(tmp_path: Path) -> None:
    backend = _registered(tmp_path, {})
    assert backend.capabilities == frozenset()
    assert backend.detail == "full"
    configured = _registered(tmp_path, {"STORYKIT_DRYRUN_DETAIL": "Policy"})
    assert configured.detail == "policy"


@anyio
async def test_full_preview_lists_every_git_command_and_touches_nothing(
    repo_make: Callable[..., Path],
    tmp_path: Path,
    git_cmd: Git,
    repo_snapshot: Callable[[Path], dict[str, str]],
) -> None:
    repo = repo_make(FILES)
    work = tmp_path / "work"
    before = repo_snapshot(repo)
    refs = git_cmd(repo, "for-each-ref")
    result = await DryRunBackend(remote="origin").open(_request(repo, work))
    assert repo_snapshot(repo) == before
    assert git_cmd(repo, "for-each-ref") == refs  # no branch was made
    assert list(work.iterdir()) == []  # the throwaway index is gone

    assert result.dry_run is True
    assert result.backend == "dry-run"
    assert result.branch == "sk/one"
    assert result.diff == DIFF
    assert (result.plan_id, result.variant) == ("p1", "dir:lib")
    base = git_cmd(repo, "rev-parse", "main").strip()
    ops = list(result.operations)
    assert ops[0] == f"# base: main ({base})"
    assert f"# check: the diff applies cleanly to {base[:12]}" in ops
    assert "# M lib/a.py (+1 -1)" in ops
    assert "# M b.py (+1 -0)" in ops
    commands = [op for op in ops if not op.startswith("#")]
    tree = work / "pr-XXXXXXXX" / "tree"
    assert commands[0] == (
        f"git -C {repo} -c core.hooksPath={os.devnull} worktree add --detach --quiet {tree} {base}"
    )
    assert commands[1].startswith(f"git -C {tree} apply --3way --index")
    assert "-c user.name=storykit -c user.email=storykit@localhost" in commands[2]
    assert "Suggestion-Id: s1\nSuggestion-Id: s2" in commands[2]
    assert commands[3] == f"git -C {tree} branch --no-track -- sk/one HEAD"
    assert commands[4].endswith("push --quiet -- origin refs/heads/sk/one:refs/heads/sk/one")
    assert commands[5] == f"git -C {repo} worktree remove --force {tree}"


@anyio
async def test_detail_levels_grade_the_operations(
    repo_make: Callable[..., Path], tmp_path: Path
) -> None:
    repo = repo_make(FILES)
    results = {
        level: (await DryRunBackend(detail=level).open(_request(repo, tmp_path / "w"))).operations
        for level in ("policy", "diff", "full", "everything")
    }
    policy, diff, full = results["policy"], results["diff"], results["full"]
    assert all(op.startswith("#") for op in policy)
    assert "# push: none (no remote)" in policy
    assert not any(op.startswith("# M ") for op in policy)
    assert diff[: len(policy)] == policy
    assert [op for op in diff if op.startswith("# M ")] == [
        "# M lib/a.py (+1 -1)",
        "# M b.py (+1 -0)",
    ]
    assert all(op.startswith("#") for op in diff)
    assert full[: len(diff)] == diff
    assert any(op.startswith("git ") for op in full)
    assert results["everything"][0].startswith("# unknown STORYKIT_DRYRUN_DETAIL 'everything'")
    assert results["everything"][1:] == full
    # The diff itself is always returned: the SPEC promises it for every dry run.


@anyio
async def test_a_diff_that_does_not_apply_fails_the_dry_run_with_gits_reason(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git
) -> None:
    repo = repo_make(FILES)
    work = tmp_path / "w"
    base = git_cmd(repo, "rev-parse", "main").strip()
    stale = DIFF.replace("-x = 1", "-x = 99")
    good = Suggestion(
        id="s2",
        source="t",
        agent="a",
        title="t",
        diff=DIFF.split("diff --git a/b.py")[0],
        diff_hash="x",
        files=(),
    )
    bad = dataclasses.replace(good, id="s1", diff=stale)
    request = dataclasses.replace(_request(repo, work, stale), suggestions=(bad, good))
    with pytest.raises(Conflict) as caught:
        await DryRunBackend().open(request)
    detail = caught.value.detail
    assert detail.startswith(
        f"the diff of variant 'dir:lib' does not apply to main ({base[:12]}): "
    )
    assert "lib/a.py" in detail  # git's reason
    assert "s1 does not apply on its own" in detail and "s2" not in detail
    assert "revision made against main" in detail and "new plan" in detail
    assert list(work.iterdir()) == []


@anyio
async def test_what_a_real_run_would_refuse_fails_the_dry_run_too(
    repo_make: Callable[..., Path], tmp_path: Path
) -> None:
    repo = repo_make(FILES)
    work = tmp_path / "w"
    with pytest.raises(Invalid, match="not a valid branch name"):
        await DryRunBackend().open(_request(repo, work, branch="no..dots"))
    with pytest.raises(Invalid, match="no changes to commit"):
        await DryRunBackend().open(_request(repo, work, ""))
    with pytest.raises(Invalid, match="does not name a commit"):
        await DryRunBackend().open(dataclasses.replace(_request(repo, work), base_ref="nope"))
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    with pytest.raises(BackendError, match="is not a git repository"):
        await DryRunBackend().open(_request(plain, work))


@anyio
async def test_a_diff_made_on_an_older_commit_applies_as_the_real_run_merges_it(
    repo_make: Callable[..., Path],
    tmp_path: Path,
    git_cmd: Git,
    repo_snapshot: Callable[[Path], dict[str, str]],
) -> None:
    # A plain `git apply --check` refuses this diff (a line was added above its hunk at
    # the top of the file), but `git apply --3way`, as the git and forge backends run
    # it, merges it cleanly: the dry run must agree with them.
    repo = repo_make(FILES)
    (repo / "lib" / "a.py").write_text("x = 1\ny = 20\n")
    old_diff = git_cmd(repo, "diff")
    git_cmd(repo, "checkout", "--", "lib/a.py")
    (repo / "lib" / "a.py").write_text("import os\nx = 1\ny = 2\n")
    git_cmd(repo, "commit", "-qam", "an import")
    with pytest.raises(AssertionError, match=r"patch failed: lib/a\.py:1"):
        git_cmd(repo, "apply", "--check", "-", input=old_diff.encode())
    objects = git_cmd(repo, "count-objects", "-v")
    before = repo_snapshot(repo)
    result = await DryRunBackend().open(_request(repo, tmp_path / "w", old_diff))
    base = git_cmd(repo, "rev-parse", "main").strip()
    assert f"# check: the diff applies cleanly to {base[:12]}" in result.operations
    assert repo_snapshot(repo) == before
    assert git_cmd(repo, "count-objects", "-v") == objects  # the merge wrote no object here


@anyio
async def test_a_base_given_as_a_commit_id_is_shown_once(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git
) -> None:
    repo = repo_make(FILES)
    base = git_cmd(repo, "rev-parse", "main").strip()
    request = dataclasses.replace(_request(repo, tmp_path / "w"), base_ref=base)
    result = await DryRunBackend().open(request)
    assert result.operations[0] == f"# base: {base}"
    short = dataclasses.replace(request, base_ref=base[:10])
    assert (await DryRunBackend().open(short)).operations[0] == f"# base: {base}"


@anyio
async def test_a_taken_default_branch_name_gets_a_suffix_and_says_so(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git
) -> None:
    repo = repo_make(FILES)
    git_cmd(repo, "branch", "sk/one")
    git_cmd(repo, "branch", "sk/one-2")
    result = await DryRunBackend().open(_request(repo, tmp_path / "w"))
    assert result.branch == "sk/one-3"
    assert "# branch: sk/one-3 (new; sk/one and sk/one-2 already exist)" in result.operations
    assert any(op.endswith("branch --no-track -- sk/one-3 HEAD") for op in result.operations)


@anyio
async def test_a_branch_name_the_caller_chose_is_used_exactly_or_refused(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git
) -> None:
    repo = repo_make(FILES)
    chosen = dataclasses.replace(_request(repo, tmp_path / "w"), branch_given=True)
    assert (await DryRunBackend().open(chosen)).branch == "sk/one"
    git_cmd(repo, "branch", "sk/one")
    with pytest.raises(Conflict, match=r"branch 'sk/one' already exists; choose another name"):
        await DryRunBackend().open(chosen)


@anyio
async def test_a_big_variant_diff_is_read_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repo_make: Callable[..., Path]
) -> None:
    on_loop: list[bool] = []
    real_patch_set = PatchSet  # what storykit.diffs imported

    def patch_set(diff: str) -> Any:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return real_patch_set(diff)

    monkeypatch.setattr(storykit.diffs, "PatchSet", patch_set)
    big = make_diff("big.py", "", "x = 1\n" * 20_000)
    result = await DryRunBackend().open(_request(repo_make(FILES), tmp_path / "w", big))
    assert "# A big.py (+20000 -0)" in result.operations
    assert on_loop == [False]
