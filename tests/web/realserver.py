"""Start a real ``storykit serve`` process on 127.0.0.1 for tests that need the real server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from storykit.testing import wait_until

KEYS = (
    "bot:agent=agentkey123,me:reviewer=reviewkey12,other:reviewer=otherkey12,root:admin=adminkey123"
)
AGENT_KEY, REVIEWER_KEY, OTHER_KEY, ADMIN_KEY = (
    "agentkey123",
    "reviewkey12",
    "otherkey12",
    "adminkey123",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    data_dir: Path
    log_file: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        return self.proc.returncode


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes] | None = None, deadline: float = 30
) -> None:
    def healthy() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        return False

    wait_until(healthy, what=f"{url} to answer /health", deadline=deadline)


def start_server(
    tmp_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    worker: str = "asyncio",
    port: int | None = None,
    data_dir: Path | None = None,
) -> Server:
    port = port or free_port()
    data_dir = data_dir or tmp_path / "data"
    log_file = tmp_path / f"server-{port}.log"
    repo = tmp_path / "repo"
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "-q", str(repo)], check=True)  # serve checks REPO_PATH
    full_env = (
        os.environ
        | {
            "API_TOKENS": KEYS,
            "REPO_PATH": str(repo),
            "LOG_FILE": str(log_file),
            "STORYKIT_LOAD_PLUGINS": "",
        }
        | dict(env or {})
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "storykit_cli",
            "serve",
            "--port",
            str(port),
            "--worker",
            worker,
            "--data-dir",
            str(data_dir),
        ],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return Server(proc=proc, url=url, port=port, data_dir=data_dir, log_file=log_file)


@contextlib.contextmanager
def running_server(tmp_path: Path, **kwargs: object) -> Iterator[Server]:
    server = start_server(tmp_path, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def sample_diff(n: int = 1) -> str:
    name = f"m{n}.py"
    return (
        f"diff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n@@ -1 +1 @@\n-a = 1\n+a = {n}\n"
    )


def serve_command(
    repo: Path, data_dir: Path, port: int, *, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """``storykit serve`` as a person starts it (no API_TOKENS unless ``env`` has them), its
    output captured: for tests of start-up itself."""
    full = {k: v for k, v in os.environ.items() if k not in ("API_TOKENS", "REPO_PATH")}
    full |= {"REPO_PATH": str(repo), "STORYKIT_LOAD_PLUGINS": "", "LOG_FILE": str(log)}
    command = ["serve", "--port", str(port), "--data-dir", str(data_dir)]
    return subprocess.Popen(
        [sys.executable, "-m", "storykit_cli", *command],
        env=full | dict(env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
