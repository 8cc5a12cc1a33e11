"""Fixtures for the first-party plugin tests.

Git fixtures (``git_*``, ``repo_*``) make real repositories in ``tmp_path``; the
ruff source, planner and PR backend tests use them. ``policy_registry`` registers policy
plugin modules the way their entry points do (the ``test_policy_*`` tests).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

import pytest

from storykit.plugins import Registry, get_plugin_manager
from storykit.settings import Settings

# -- git fixtures (ruff source, planner, PR backends) ----------------------------------
GIT_TEST_ID = ("-c", "user.name=Test", "-c", "user.email=test@example.com")


def _git(repo: Path, *args: str, input: bytes | None = None) -> str:
    done = subprocess.run(
        ["git", *GIT_TEST_ID, "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        input=input,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.decode()}")
    return done.stdout.decode("utf-8", "surrogateescape")


def _write(root: Path, files: Mapping[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")


@pytest.fixture
def git_cmd() -> Callable[..., str]:
    """``git_cmd(repo, *args, input=None)``: run git, fail the test if git fails, return stdout."""
    return _git


@pytest.fixture
def repo_make(tmp_path: Path) -> Callable[..., Path]:
    """``repo_make(files, name="repo")``: a repository on ``main`` with ``files`` committed."""

    def make(files: Mapping[str, str | bytes], name: str = "repo") -> Path:
        repo = tmp_path / name
        repo.mkdir()
        _git(repo, "init", "-q", "-b", "main")
        _write(repo, files)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "initial")
        return repo

    return make


@pytest.fixture
def repo_write() -> Callable[[Path, Mapping[str, str | bytes]], None]:
    """``repo_write(root, files)``: write files (str as UTF-8 without newline translation)."""
    return _write


@pytest.fixture
def repo_snapshot() -> Callable[[Path], dict[str, str]]:
    """Everything a user could notice about a working tree: every file's bytes (tracked,
    untracked and ignored), ``git status``, ``HEAD``, the index file and the worktree list."""

    def snapshot(repo: Path) -> dict[str, str]:
        state: dict[str, str] = {}
        for path in sorted(repo.rglob("*")):
            rel = path.relative_to(repo).as_posix()
            if rel == ".git" or rel.startswith(".git/") or not path.is_file():
                continue
            state[f"file:{rel}"] = hashlib.sha256(path.read_bytes()).hexdigest()
        # --no-optional-locks: reading the status must not refresh (rewrite) the index.
        state["status"] = _git(
            repo, "--no-optional-locks", "status", "--porcelain=v1", "-uall", "--ignored"
        )
        state["HEAD"] = (repo / ".git" / "HEAD").read_text()
        state["head-commit"] = _git(repo, "rev-parse", "HEAD")
        state["index"] = hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest()
        state["worktrees"] = _git(repo, "worktree", "list", "--porcelain")
        return state

    return snapshot


# -- policy fixtures (risk-regex, paths, hidden-text, opa) -------------------------------
@pytest.fixture
def policy_registry(tmp_path: Path) -> Callable[..., Registry]:
    """``policy_registry(*modules)``: a Registry with only those plugin modules registered,
    each under its module name, as the entry points register them."""

    def build(*modules: ModuleType) -> Registry:
        pm = get_plugin_manager(load_entrypoints=False)
        for module in modules:
            pm.register(module, name=module.__name__.rsplit(".", 1)[-1])
        pm.check_pending()
        return Registry(pm, Settings.from_env({}, data_dir=tmp_path / "policy-data"))

    return build
