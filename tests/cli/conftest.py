"""Fixtures for the CLI tests; the helpers live in ``cli_helpers``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # works under any --import-mode

from cli_helpers import (
    API_TOKENS,
    CLEARED,
    PLUGIN_DIR,
    PLUGIN_ENV,
    Server,
    make_repo,
    subprocess_env,
    write_dist_info,
)


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """sys.path entries that install the fake plugins (``cli-fakes``) with an entry point."""
    site = tmp_path_factory.mktemp("site")
    write_dist_info(site)
    return [str(site), str(PLUGIN_DIR)]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def local_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, repo: Path, plugin_path: list[str]
) -> Path:
    """Local mode on a fresh data directory under ``tmp_path``; returns the data directory."""
    for entry in reversed(plugin_path):
        monkeypatch.syspath_prepend(entry)
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in PLUGIN_ENV.items():
        monkeypatch.setenv(name, value)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("STORYKIT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("REPO_PATH", str(repo))
    return data_dir


@pytest.fixture
def servers(tmp_path: Path, repo: Path, plugin_path: list[str]) -> Iterator[Callable[..., Server]]:
    """Start real servers (``python -m storykit_cli serve``); all are stopped afterwards."""
    started: list[Server] = []

    def start(name: str = "server", **extra: str) -> Server:
        settings = {"API_TOKENS": API_TOKENS, "REPO_PATH": str(repo)}
        # The tests run many commands a second; the limiter gets its own test.
        settings |= {"RATE_LIMIT_RPS": "1000", "RATE_LIMIT_BURST": "1000"} | extra
        env = subprocess_env(settings, plugin_path)
        server = Server(data_dir=tmp_path / name, env=env, log=tmp_path / f"{name}.log")
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
