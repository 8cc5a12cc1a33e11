"""Fixtures for the first-party plugin tests.

Git fixtures (``git_*``, ``repo_*``) make real repositories in ``tmp_path``; the
ruff source, planner and PR backend tests use them. ``policy_registry`` registers policy
plugin modules the way their entry points do (the ``test_policy_*`` tests).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
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

    def build(*modules: ModuleType, env: Mapping[str, str] | None = None) -> Registry:
        pm = get_plugin_manager(load_entrypoints=False)
        for module in modules:
            pm.register(module, name=module.__name__.rsplit(".", 1)[-1])
        pm.check_pending()
        return Registry(pm, Settings.from_env(dict(env or {}), data_dir=tmp_path / "policy-data"))

    return build


# -- forge and LLM fixtures (github, gitlab, openai-compatible) ---------------------------
# Recorded responses live in tests/plugins/recorded/<forge>/<name>.json as
# {"status": 201, "headers": {...}, "body": <JSON>} (or "text": a body that is not JSON):
# the shapes the forge documents.
RECORDED = Path(__file__).parent / "recorded"
# Fixed identity and dates make the commits of ``forge_repo`` the same everywhere, so the
# recorded responses can name the base commit and the tree storykit builds on it.
_FIXED_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_AUTHOR_DATE": "2024-01-02T03:04:05+00:00",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_COMMITTER_DATE": "2024-01-02T03:04:05+00:00",
}


ForgeScript = Sequence[tuple[str, str, str | Exception]]


@dataclasses.dataclass
class ForgeExchange:
    """One request the code under test made."""

    method: str
    path: str
    query: dict[str, str]
    headers: httpx.Headers
    json: Any


class ForgeReplay:
    """An ``httpx.MockTransport`` that answers each request with the next recorded response.

    ``script`` is the exact list of expected requests: ``(method, path, answer)`` where
    ``answer`` names a JSON file in the folder or is an exception to raise (a timeout, a
    refused connection). A request out of order, or one too many, fails the test.
    """

    def __init__(self, folder: Path, script: ForgeScript) -> None:
        self.folder = folder
        self.script = list(script)
        self.requests: list[ForgeExchange] = []
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self._answer))

    def _answer(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append(
            ForgeExchange(
                method=request.method,
                path=request.url.raw_path.decode().partition("?")[0],  # as sent: %2F stays
                query=dict(request.url.params),
                headers=request.headers,
                json=body,
            )
        )
        if not self.script:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        method, path, answer = self.script.pop(0)
        sent = self.requests[-1].path
        assert (request.method, sent) == (method, path), f"expected {method} {path}"
        if isinstance(answer, Exception):
            raise answer
        return self.response(answer)

    def response(self, name: str) -> httpx.Response:
        recorded = json.loads((self.folder / f"{name}.json").read_text(encoding="utf-8"))
        headers = recorded.get("headers", {})
        if "text" in recorded:  # a body that is not JSON (a proxy's or a rate limiter's)
            return httpx.Response(recorded["status"], headers=headers, text=recorded["text"])
        return httpx.Response(recorded["status"], headers=headers, json=recorded.get("body"))

    def calls(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def body(self, method: str, path: str) -> Any:
        """The JSON body of the (only) request to ``method path``."""
        (found,) = [r.json for r in self.requests if (r.method, r.path) == (method, path)]
        return found


@pytest.fixture
def forge_replay() -> Iterator[Callable[[str, ForgeScript], ForgeReplay]]:
    """``forge_replay(folder, script)``: a :class:`ForgeReplay` over ``recorded/<folder>``;
    the test fails if any scripted request was not made."""
    made: list[ForgeReplay] = []

    def make(folder: str, script: ForgeScript) -> ForgeReplay:
        made.append(ForgeReplay(RECORDED / folder, script))
        return made[-1]

    yield make
    for replay in made:
        assert not replay.script, f"requests never made: {replay.script}"


@pytest.fixture
def llm_replay(
    forge_replay: Callable[[str, ForgeScript], ForgeReplay],
) -> Callable[[ForgeScript], ForgeReplay]:
    """``llm_replay(script)``: a :class:`ForgeReplay` over ``recorded/openai``."""
    return lambda script: forge_replay("openai", script)


@pytest.fixture
def forge_repo(tmp_path: Path) -> Callable[..., Path]:
    """``forge_repo(files, name="repo", executable=())``: like ``repo_make``, but every
    commit id is the same on every machine (fixed identity and dates), so recorded
    responses can name it. ``executable`` lists paths committed with mode 100755."""

    def make(
        files: Mapping[str, str | bytes], name: str = "repo", executable: Sequence[str] = ()
    ) -> Path:
        repo = tmp_path / name
        repo.mkdir()
        # No user or system configuration either (an i18n.commitEncoding would change ids).
        env = {**os.environ, **_FIXED_GIT_ENV}
        env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
        _write(repo, files)

        def git(*args: str) -> None:
            subprocess.run(
                ["git", "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false", *args],
                cwd=repo,
                env=env,
                check=True,
                capture_output=True,
            )

        git("init", "-q", "-b", "main")
        git("add", "-A")
        for path in executable:
            git("update-index", "--chmod=+x", path)
        git("commit", "-q", "-m", "initial")
        return repo

    return make
