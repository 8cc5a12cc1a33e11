"""The ``dry-run`` PR backend: the preview, its detail levels and its read-only checks."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import storykit.diffs
import storykit_plugins.pr_dryrun as pr_dryrun_module
from storykit.backends import PRRequest
from storykit.models import Variant
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
async def test_failed_checks_are_reported_not_raised(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git
) -> None:
    repo = repo_make(FILES)
    git_cmd(repo, "branch", "taken")
    stale = DIFF.replace("-x = 1", "-x = 99")
    result = await DryRunBackend().open(_request(repo, tmp_path / "w", stale, branch="taken"))
    checks = [op for op in result.operations if op.startswith("# check")]
    assert checks[0] == "# check failed: branch 'taken' already exists"
    assert checks[1].startswith("# check failed: the diff does not apply to ")
    assert "lib/a.py" in checks[1]
    assert result.diff == stale

    bad = await DryRunBackend().open(_request(repo, tmp_path / "w", branch="no..dots"))
    assert any("not a valid branch name" in op for op in bad.operations)
    empty = await DryRunBackend().open(_request(repo, tmp_path / "w", ""))
    assert "# check failed: the variant has no changes to commit" in empty.operations


@anyio
async def test_outside_a_repository_the_preview_still_comes_back(tmp_path: Path) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    result = await DryRunBackend().open(_request(plain, tmp_path / "w"))
    assert result.diff == DIFF
    assert any("is not a git repository" in op for op in result.operations)


@anyio
async def test_a_big_variant_diff_is_read_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop: list[bool] = []
    real_patch_set = storykit.diffs.PatchSet

    def patch_set(diff: str) -> Any:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return real_patch_set(diff)

    monkeypatch.setattr(storykit.diffs, "PatchSet", patch_set)
    big = make_diff("big.py", "", "x = 1\n" * 20_000)
    result = await DryRunBackend().open(_request(tmp_path, tmp_path / "w", big))
    assert "# A big.py (+20000 -0)" in result.operations
    assert on_loop == [False]
