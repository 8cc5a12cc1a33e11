"""The first run of ``storykit serve``: the keys it makes, and the refusals that keep a
newcomer out of trouble (a second server on one data directory, a REPO_PATH that is no
repository, API_TOKENS hiding the generated keys)."""

from __future__ import annotations

import re
import socket
import stat
import subprocess
from pathlib import Path

import httpx
from realserver import free_port, sample_diff, serve_command, wait_healthy


def serve(repo: Path, data: Path, port: int, *, tokens: str | None = None) -> subprocess.Popen[str]:
    env = {} if tokens is None else {"API_TOKENS": tokens}
    return serve_command(repo, data, port, log=data.parent / "log", env=env)


def git_repo(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.terminate()
    return proc.communicate(timeout=30)


def test_the_first_run_makes_a_key_for_you_and_one_for_an_agent(tmp_path: Path) -> None:
    repo, data, port = git_repo(tmp_path / "repo"), tmp_path / "d", free_port()
    proc = serve(repo, data, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, None)
        yours = (data / "api-key").read_text().strip()
        agents = (data / "agent-key").read_text().strip()
        for name in ("api-key", "agent-key"):
            assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
        me = httpx.get(f"{url}/me", headers={"X-API-Key": yours}).json()
        agent = httpx.get(f"{url}/me", headers={"X-API-Key": agents}).json()
        assert me["role"] == "admin"
        assert agent == {"name": "agent", "role": "agent"}
        # The walk the docs give: the agent proposes, you approve.
        r = httpx.post(
            f"{url}/suggestions",
            headers={"X-API-Key": agents},
            json={"title": "Bump", "diff": sample_diff()},
        )
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        r = httpx.post(
            f"{url}/suggest/review",
            headers={"X-API-Key": yours},
            json={"id": sid, "action": "approve"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved"
    finally:
        out, _ = stop(proc)
    assert yours in out and agents in out  # shown once, when made
    assert str(repo) in out  # which repository this server reads
    proc = serve(repo, data, port)
    try:
        wait_healthy(url, None)
    finally:
        again, _ = stop(proc)
    assert yours not in again and agents not in again
    assert "using the keys kept in" in again


def test_api_tokens_says_that_the_generated_keys_are_not_accepted(tmp_path: Path) -> None:
    repo, data, port = git_repo(tmp_path / "repo"), tmp_path / "d", free_port()
    data.mkdir()
    (data / "api-key").write_text("sk_generated_earlier\n")
    proc = serve(repo, data, port, tokens="ci:agent=agentkey123")
    try:
        wait_healthy(f"http://127.0.0.1:{port}", None)
        r = httpx.get(f"http://127.0.0.1:{port}/me", headers={"X-API-Key": "sk_generated_earlier"})
        assert r.status_code == 401
    finally:
        out, _ = stop(proc)
    assert "API_TOKENS is set, so the generated keys" in out
    assert "sk_generated_earlier" not in out


def test_a_second_server_on_one_data_directory_is_refused(tmp_path: Path) -> None:
    repo, data = git_repo(tmp_path / "repo"), tmp_path / "d"
    port, other = free_port(), free_port()
    first = serve(repo, data, port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", None)
        second = serve(repo, data, other)
        _out, err = second.communicate(timeout=60)
        assert second.returncode != 0
        assert "already running on the data directory" in err
        assert f"http://127.0.0.1:{port}" in err
        assert len(err.strip().splitlines()) == 1
        # The first server's state file survives the refused start.
        assert (data / "server.json").exists()
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        stop(first)


def test_a_repo_path_that_is_no_git_repository_stops_start_up(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = serve(plain, tmp_path / "d", free_port())
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert len(err.strip().splitlines()) == 1
    assert re.search(r"REPO_PATH=.*plain.* is not a git repository", err)
    assert "Traceback" not in err


def test_the_port_hint_also_says_how_with_make(tmp_path: Path) -> None:
    repo = git_repo(tmp_path / "repo")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = serve(repo, tmp_path / "d", port)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert re.search(r"use --port (\d+) \(with make: make serve PORT=\1\)", err)
