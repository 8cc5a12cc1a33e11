"""The whole flow with the first-party plugins (ruff, the default planner, dry-run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_helpers import diff_text, ok_json, one_error_line, storykit


@pytest.fixture
def lint_repo(local_env: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test repository with one unused import committed, and only those plugins loaded."""
    (repo / "c.py").write_text("import os\nimport sys\n\nprint(sys.argv)\n", encoding="utf-8")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "add", "c.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "unused import"], check=True)
    monkeypatch.setenv("STORYKIT_LOAD_PLUGINS", "ruff,planner,dry-run")
    return repo


def test_ruff_to_a_dry_run_branch(lint_repo: Path) -> None:
    generated = ok_json("suggest", "generate", "--source", "ruff", "c.py")
    (suggestion,) = generated["items"]
    assert suggestion["source"] == "ruff" and "F401" in suggestion["title"]
    assert suggestion["files"] == ["c.py"]
    assert "-import os" in suggestion["diff"]
    ok_json("suggest", "review", suggestion["id"], "--approve")
    plan = ok_json("plan", "create", "--goal", "Remove unused imports")
    variant = plan["variants"][0]["key"]
    ok_json("plan", "select", plan["id"], variant)
    shown = storykit("plan", "show", plan["id"]).stdout
    assert f"* {variant}" in shown
    result = storykit("pr", plan["id"])
    assert result.exit_code == 0, result.output
    assert "dry run (dry-run): would create branch storykit/" in result.stdout
    assert "-import os" in result.stdout
    assert result.stdout.rstrip().endswith(
        "nothing was changed; add --no-dry-run to do it (with PR_BACKEND set to git, github or"
        " gitlab)"
    )
    status = subprocess.run(
        ["git", "-C", str(lint_repo), "status", "--porcelain"], capture_output=True, text=True
    )
    assert status.stdout == ""  # the working tree is never touched


def _git(repo: Path, *args: str) -> str:
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    return subprocess.run([*git, *args], check=True, capture_output=True, text=True).stdout


def _approved_plan(monkeypatch: pytest.MonkeyPatch) -> str:
    """A plan whose one variant holds one approved suggestion made against HEAD (a.py).
    Local mode acts as the OS user: one proposes it, another approves it."""
    monkeypatch.setenv("LOGNAME", "bot")
    s = ok_json("suggest", "submit", "-", "-t", "Check a", input=diff_text())
    assert s["status"] == "pending", s["findings"]
    monkeypatch.setenv("LOGNAME", "carol")
    ok_json("suggest", "review", s["id"], "--approve")
    plan = ok_json("plan", "create", "--goal", "Check a")
    ok_json("plan", "select", plan["id"], plan["variants"][0]["key"])
    return str(plan["id"])


def test_a_diff_that_does_not_apply_is_blocked_on_submit(lint_repo: Path) -> None:
    typo = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-teh\n+the\n"
    result = ok_json("suggest", "submit", "-", "-t", "Fix a typo", input=typo)
    assert result["status"] == "blocked"
    assert [f["rule"] for f in result["findings"]] == ["diff:does-not-apply"]


def test_a_dry_run_whose_diff_no_longer_applies_fails_in_one_line(
    lint_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_id = _approved_plan(monkeypatch)
    (lint_repo / "a.py").write_text("a = 100\n", encoding="utf-8")  # the base moves on
    _git(lint_repo, "commit", "-qam", "a moves on")
    line = one_error_line(storykit("pr", plan_id), 1)
    assert "does not apply to HEAD" in line and "patch failed: a.py:1" in line
    assert "ask its proposer for a revision made against HEAD" in line


def test_no_dry_run_needs_a_real_pr_backend(
    lint_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_id = _approved_plan(monkeypatch)
    monkeypatch.delenv("PR_BACKEND")  # the default: dry-run
    line = one_error_line(storykit("pr", plan_id, "--no-dry-run"), 4)
    assert "a real run needs a real PR backend: set PR_BACKEND=git" in line
    assert "storykit/" not in _git(lint_repo, "branch", "--list")


def test_the_branch_can_be_named_or_a_free_one_is_picked(
    lint_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_id = _approved_plan(monkeypatch)
    named = ok_json("pr", plan_id, "--branch", "fix/check-a")
    assert named["branch"] == "fix/check-a"
    assert "not a valid git branch name" in one_error_line(
        storykit("pr", plan_id, "--branch", "bad..name"), 1
    )
    default = ok_json("pr", plan_id)["branch"]
    _git(lint_repo, "branch", default)
    picked = ok_json("pr", plan_id)
    assert picked["branch"] == f"{default}-2"
    assert f"# branch: {default}-2 (new; {default} already exists)" in picked["operations"]
    line = one_error_line(storykit("pr", plan_id, "--branch", default), 1)
    assert f"branch {default!r} already exists; choose another name (--branch" in line
    monkeypatch.setenv("PR_BACKEND", "git")
    monkeypatch.setenv("STORYKIT_LOAD_PLUGINS", "ruff,planner,dry-run,git")
    real = ok_json("pr", plan_id, "--no-dry-run", "--branch", "fix/check-a")
    assert real["dry_run"] is False and real["branch"] == "fix/check-a"
    assert _git(lint_repo, "log", "-1", "--format=%s", "fix/check-a").strip() == "Check a"


def test_policy_check_judges_against_the_base_it_is_given(lint_repo: Path) -> None:
    """The ruff policy applies the diff to ``--base-ref``: c.py at HEAD~1 does not exist."""
    fix = "--- a/c.py\n+++ b/c.py\n@@ -1,2 +1 @@\n-import os\n import sys\n"
    at_head = ok_json("policy", "check", "-", "--base-ref", "HEAD", input=fix)
    assert "diff:does-not-apply" not in [f["rule"] for f in at_head["findings"]]
    before = storykit("policy", "check", "-", "--base-ref", "HEAD~1", "--json", input=fix)
    assert before.exit_code == 1  # deny: it does not apply there
    assert '"diff:does-not-apply"' in before.stdout
