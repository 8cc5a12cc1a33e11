"""The ``git`` PR backend on real repositories, a local bare remote included."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

import storykit_plugins.pr_git as pr_git_module
from storykit.backends import PRRequest
from storykit.diffs import diff_hash
from storykit.errors import BackendError, Conflict, Invalid
from storykit.models import Action, Review, Risk, Status, Suggestion, Variant
from storykit.plugins import Registry, get_plugin_manager
from storykit.settings import Settings
from storykit_plugins.pr_dryrun import DryRunBackend
from storykit_plugins.pr_git import GitBackend

anyio = pytest.mark.anyio
Git = Callable[..., str]
Snapshot = Callable[[Path], dict[str, str]]
FILES = {
    "app/main.py": "import os\n\n\ndef main():\n    return os.name\n",
    "README.md": "hello\n",
    ".gitignore": "*.log\n",
}
EDIT = (
    "diff --git a/app/main.py b/app/main.py\n"
    "--- a/app/main.py\n"
    "+++ b/app/main.py\n"
    "@@ -2,4 +2,4 @@ import os\n"
    " \n"
    " \n"
    " def main():\n"
    "-    return os.name\n"
    "+    return os.sep\n"
)
README = (
    "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n"
    "@@ -1 +1 @@\n-hello\n+Hello.\n"
)


def _suggestion(sid: str, diff: str, reviewers: Mapping[str, bool]) -> Suggestion:
    """``reviewers``: name → whether the approval was given to the current diff."""
    digest = diff_hash(diff)
    reviews = tuple(
        Review(reviewer=name, action=Action.APPROVE, diff_hash=digest if current else "sha256:old")
        for name, current in reviewers.items()
    )
    return Suggestion(
        id=sid,
        source="ruff",
        agent="agent",
        title=f"Fix {sid}",
        diff=diff,
        diff_hash=digest,
        files=(),
        risk=Risk.LOW,
        status=Status.APPROVED,
        reviews=reviews,
    )


def _request(
    repo: Path, work: Path, diff: str, *, branch: str = "storykit/tidy", dry_run: bool = False
) -> PRRequest:
    s1 = _suggestion("sug-1", EDIT, {"alice": True, "mallory": False})
    s2 = _suggestion("sug-2", README, {"bob": True, "alice": True})
    variant = Variant(
        key="all", title="All 2 suggestions", suggestion_ids=("sug-1", "sug-2"), diff=diff
    )
    return PRRequest(
        repo_path=repo,
        plan_id="plan-7",
        goal="Tidy the code\n\nAs discussed.",
        variant=variant,
        suggestions=(s1, s2),
        branch=branch,
        base_ref="main",
        dry_run=dry_run,
        requested_by="carol",
        work_dir=work,
    )


@pytest.fixture
def git_no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user or system git configuration at all: storykit must bring its own identity."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)


@pytest.fixture
def repo_dirty(
    repo_make: Callable[..., Path], repo_write: Callable[[Path, Mapping[str, str | bytes]], None]
) -> Path:
    """A repository whose working tree has a modified file, an untracked and an ignored one."""
    repo = repo_make(FILES)
    repo_write(repo, {"README.md": "local edit\n", "scratch.txt": "mine\n", "debug.log": "x\n"})
    return repo


def test_capabilities_follow_the_remote_setting(tmp_path: Path) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(pr_git_module, name="git")
    plain = Registry(pm, Settings.from_env({}, data_dir=tmp_path)).pr_backends["git"].backend
    assert plain.capabilities == frozenset()
    env = {"STORYKIT_GIT_REMOTE": "origin"}
    pushing = Registry(pm, Settings.from_env(env, data_dir=tmp_path)).pr_backends["git"].backend
    assert pushing.capabilities == frozenset({"push"})
    with pytest.raises(Invalid):
        GitBackend(remote="--upload-pack=evil")


@anyio
@pytest.mark.usefixtures("git_no_config")
async def test_one_commit_on_a_new_branch_and_the_user_tree_untouched(
    repo_dirty: Path, tmp_path: Path, git_cmd: Git, repo_snapshot: Snapshot
) -> None:
    work = tmp_path / "data" / "work"
    before = repo_snapshot(repo_dirty)
    base = git_cmd(repo_dirty, "rev-parse", "main").strip()
    result = await GitBackend().open(_request(repo_dirty, work, EDIT + README))

    assert repo_snapshot(repo_dirty) == before
    assert list(work.iterdir()) == []  # the worktree and its scratch files are gone
    assert result.dry_run is False
    assert result.backend == "git"
    assert result.branch == "storykit/tidy"
    assert result.commit == git_cmd(repo_dirty, "rev-parse", "storykit/tidy").strip()
    assert git_cmd(repo_dirty, "rev-list", "--count", f"{base}..storykit/tidy").strip() == "1"
    assert git_cmd(repo_dirty, "rev-parse", "storykit/tidy^").strip() == base
    assert git_cmd(repo_dirty, "show", "storykit/tidy:README.md") == "Hello.\n"
    assert "return os.sep" in git_cmd(repo_dirty, "show", "storykit/tidy:app/main.py")

    ident = git_cmd(repo_dirty, "log", "-1", "--format=%an <%ae>|%cn <%ce>", "storykit/tidy")
    assert ident.strip() == "storykit <storykit@localhost>|storykit <storykit@localhost>"
    message = git_cmd(repo_dirty, "log", "-1", "--format=%B", "storykit/tidy")
    assert message.splitlines()[0] == "Tidy the code"
    assert "Variant: All 2 suggestions (all)" in message
    trailers = git_cmd(repo_dirty, "interpret-trailers", "--parse", input=message.encode())
    assert trailers.splitlines() == [
        "Suggestion-Id: sug-1",
        "Suggestion-Id: sug-2",
        "Approved-by: alice",  # mallory approved an older version: that does not count
        "Approved-by: bob",
    ]


@anyio
async def test_the_users_hooks_do_not_run(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git
) -> None:
    repo = repo_make(FILES)
    marker = tmp_path / "hook-ran"
    for hook in ("post-checkout", "pre-commit", "commit-msg", "post-commit", "pre-push"):
        path = repo / ".git" / "hooks" / hook
        path.write_text(f"#!/bin/sh\necho {hook} >> '{marker}'\nexit 1\n")
        path.chmod(0o755)
    remote = tmp_path / "remote.git"
    git_cmd(tmp_path, "init", "-q", "--bare", str(remote))
    result = await GitBackend(remote=str(remote)).open(_request(repo, tmp_path / "work", EDIT))
    assert not marker.exists()
    assert git_cmd(remote, "rev-parse", "storykit/tidy").strip() == result.commit


@anyio
async def test_push_to_a_bare_remote(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git
) -> None:
    repo = repo_make(FILES)
    remote = tmp_path / "remote.git"
    git_cmd(tmp_path, "init", "-q", "--bare", str(remote))
    git_cmd(repo, "remote", "add", "origin", str(remote))
    backend = GitBackend(remote="origin")
    result = await backend.open(_request(repo, tmp_path / "work", EDIT))

    pushed = git_cmd(remote, "rev-parse", "refs/heads/storykit/tidy").strip()
    assert pushed == result.commit
    base = git_cmd(repo, "rev-parse", "main").strip()
    remote_diff = git_cmd(remote, "diff", base, "storykit/tidy")
    assert "-    return os.name\n+    return os.sep\n" in remote_diff
    assert any(" push " in op and "origin" in op for op in result.operations)


@anyio
async def test_a_failed_push_leaves_no_branch(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git
) -> None:
    repo = repo_make(FILES)
    work = tmp_path / "work"
    with pytest.raises(BackendError, match="pushing 'storykit/tidy'"):
        await GitBackend(remote=str(tmp_path / "no-such-remote.git")).open(
            _request(repo, work, EDIT)
        )
    assert "storykit/tidy" not in git_cmd(repo, "branch", "--list")
    assert list(work.iterdir()) == []


@anyio
async def test_a_diff_that_does_not_apply_is_a_conflict_and_leaves_nothing(
    repo_dirty: Path, tmp_path: Path, git_cmd: Git, repo_snapshot: Snapshot
) -> None:
    work = tmp_path / "work"
    stale = EDIT.replace("-    return os.name", "-    return os.getcwd()")
    before = repo_snapshot(repo_dirty)
    with pytest.raises(
        Conflict, match=r"does not apply to main \([0-9a-f]{12}\): .*app/main.py"
    ) as caught:
        await GitBackend().open(_request(repo_dirty, work, stale))
    # Each suggestion applies on its own here, so the advice is about the combination.
    assert caught.value.detail.endswith(
        "; revise the suggestions against main, or make a new plan without some of them"
    )
    assert repo_snapshot(repo_dirty) == before  # includes the worktree list
    assert git_cmd(repo_dirty, "branch", "--list") == "* main\n"
    assert list(work.iterdir()) == []


@anyio
async def test_an_existing_branch_the_caller_chose_is_refused(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git, repo_snapshot: Snapshot
) -> None:
    repo = repo_make(FILES)
    git_cmd(repo, "branch", "storykit/tidy")
    before = repo_snapshot(repo)
    request = dataclasses.replace(_request(repo, tmp_path / "work", EDIT), branch_given=True)
    with pytest.raises(Conflict, match="already exists; choose another name"):
        await GitBackend().open(request)
    assert repo_snapshot(repo) == before
    assert git_cmd(repo, "rev-parse", "storykit/tidy") == git_cmd(repo, "rev-parse", "main")


@anyio
async def test_a_taken_default_name_gets_the_first_free_suffix(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git
) -> None:
    repo = repo_make(FILES)
    git_cmd(repo, "branch", "storykit/tidy")
    git_cmd(repo, "branch", "storykit/tidy-3")  # not in the way of -2
    git_cmd(repo, "branch", "storykit/tidy-x")
    result = await GitBackend().open(_request(repo, tmp_path / "work", EDIT))
    assert result.branch == "storykit/tidy-2"
    assert result.operations[0] == "# branch storykit/tidy-2 (storykit/tidy already exists)"
    assert result.commit == git_cmd(repo, "rev-parse", "storykit/tidy-2").strip()
    assert git_cmd(repo, "rev-parse", "storykit/tidy") == git_cmd(repo, "rev-parse", "main")
    again = await GitBackend().open(_request(repo, tmp_path / "work", EDIT))
    assert again.branch == "storykit/tidy-4"


@anyio
@pytest.mark.parametrize("branch", ["bad..name", "-x", "with space", "@{-1}", "end.lock"])
async def test_bad_branch_names_are_invalid(
    repo_make: Callable[..., Path], tmp_path: Path, branch: str
) -> None:
    repo = repo_make(FILES)
    with pytest.raises(Invalid, match="branch name"):
        await GitBackend().open(_request(repo, tmp_path / "work", EDIT, branch=branch))


@anyio
async def test_empty_variants_and_dry_runs_commit_nothing(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git
) -> None:
    repo = repo_make(FILES)
    with pytest.raises(Invalid, match="no changes"):
        await GitBackend().open(_request(repo, tmp_path / "work", ""))
    result = await GitBackend().open(_request(repo, tmp_path / "work", EDIT, dry_run=True))
    assert result.dry_run is True
    assert git_cmd(repo, "branch", "--list") == "* main\n"


@anyio
async def test_the_dry_run_lists_exactly_what_the_git_backend_runs(
    repo_make: Callable[..., Path], tmp_path: Path, git_cmd: Git
) -> None:
    repo = repo_make(FILES)
    remote = tmp_path / "remote.git"
    git_cmd(tmp_path, "init", "-q", "--bare", str(remote))
    work = tmp_path / "work"
    request = _request(repo, work, EDIT + README)
    preview = await DryRunBackend(remote=str(remote)).open(request)
    real = await GitBackend(remote=str(remote)).open(request)
    planned = [op for op in preview.operations if not op.startswith("#")]
    scratch = next(op for op in real.operations if "worktree add" in op).split()[-2]
    scratch = scratch.removesuffix("/tree")
    assert [op.replace(scratch, str(work / "pr-XXXXXXXX")) for op in real.operations] == planned
    assert preview.diff == real.diff
