"""The whole flow with the first-party plugins (ruff, the default planner, dry-run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_helpers import ok_json, storykit


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
    assert result.stdout.rstrip().endswith("nothing was changed; add --no-dry-run to do it")
    status = subprocess.run(
        ["git", "-C", str(lint_repo), "status", "--porcelain"], capture_output=True, text=True
    )
    assert status.stdout == ""  # the working tree is never touched
