"""A real storykit server in a subprocess, for the browser tests and the screenshots.

``StorykitServer`` makes a git repository and a data directory under a folder,
starts ``python -m storykit_cli serve`` on a free port with test keys and the
``storykit_uitest`` plugin (tests/ui/plugin) on ``PYTHONPATH``, and waits for
``/health`` with a deadline. It can be stopped, killed and started again on the
same port and data directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from storykit.testing import wait_until

__all__ = ["KEYS", "StorykitServer", "free_port", "make_repo", "one_line_diff"]

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin"
KEYS = {
    "reviewer": "reviewer-key-0001",
    "reviewer2": "reviewer-key-0002",
    "admin": "admin-key-000001",
    "agent": "agent-key-000001",
}
API_TOKENS = ",".join(
    [
        f"rita:reviewer={KEYS['reviewer']}",
        f"sam:reviewer={KEYS['reviewer2']}",
        f"root:admin={KEYS['admin']}",
        f"bot:agent={KEYS['agent']}",
    ]
)
START_DEADLINE = 30.0

_DIST_INFO = """Metadata-Version: 2.1
Name: storykit-uitest
Version: 0.0.0
"""


def one_line_diff(path: str, old: str, new: str, line: int = 1, *, context: str = "") -> str:
    """A git-style diff that replaces one line (and keeps an optional context line after it)."""
    tail = f" {context}\n" if context else ""
    count = 2 if context else 1
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -{line},{count} +{line},{count} @@\n-{old}\n+{new}\n{tail}"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull},
    )


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A git repository with one commit of ``files``."""
    path.mkdir(parents=True, exist_ok=True)
    files = files or {
        "hello.py": "print('hello')\nx = 1\n",
        "app.py": "import os\nimport sys\n\n\ndef main():\n    return  sys.argv\n",
        "build.sh": "#!/bin/sh\nmake all\n",
    }
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    _git(path, "init", "-q", "-b", "main")
    _git(path, "add", "-A")
    _git(
        path,
        "-c",
        "user.name=storykit tests",
        "-c",
        "user.email=tests@storykit.invalid",
        "commit",
        "-q",
        "-m",
        "initial",
    )
    return path


def _install_plugin(folder: Path) -> Path:
    """Put the test plugin and a .dist-info naming its entry point in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(PLUGIN_DIR / "storykit_uitest.py", folder / "storykit_uitest.py")
    info = folder / "storykit_uitest-0.0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(_DIST_INFO, encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[storykit]\nuitest = storykit_uitest\n", encoding="utf-8"
    )
    return folder


class StorykitServer:
    """One server process; ``start()`` again after ``stop()`` reuses port and data."""

    def __init__(
        self,
        root: Path,
        *,
        plugins: str = "uitest",
        env: dict[str, str] | None = None,
        port: int | None = None,
        repo_files: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.repo = make_repo(root / "repo", repo_files)
        self.data_dir = root / "data"
        self.plugin_path = _install_plugin(root / "plugins")
        self.port = port or free_port()
        self.plugins = plugins
        self.extra_env = env or {}
        self.log_path = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYKIT_", "API_TOKENS"))}
        paths = [str(self.plugin_path), env.get("PYTHONPATH", "")]
        env.update(
            {
                "API_TOKENS": API_TOKENS,
                "REPO_PATH": str(self.repo),
                "STORYKIT_LOAD_PLUGINS": self.plugins,
                "PR_BACKEND": "uitest-forge",
                "RATE_LIMIT_RPS": "500",
                "RATE_LIMIT_BURST": "1000",
                "SSE_HEARTBEAT_INTERVAL": "2",
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": os.pathsep.join(p for p in paths if p),
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, deadline: float = START_DEADLINE) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        if not _port_free(self.port):
            # Another process would answer /health for us: refuse rather than test it.
            raise RuntimeError(f"port {self.port} is already in use")
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "storykit_cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            cwd=self.root,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_healthy(deadline)

    def _wait_healthy(self, deadline: float) -> None:
        def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"storykit exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200
            return False

        try:
            wait_until(healthy, what="storykit to answer /health", deadline=deadline)
        except AssertionError as exc:
            raise RuntimeError(f"{exc}:\n{self.log_tail()}") from None

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- the API, for arranging a test ----------------------------------------------
    def client(self, role: str = "agent") -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": KEYS[role]}, timeout=15.0)

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> Any:
        with self.client(role) as client:
            response = client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def submit(self, title: str, diff: str, rationale: str = "") -> dict[str, Any]:
        stored: dict[str, Any] = self.call(
            "agent",
            "POST",
            "/suggestions",
            json={"title": title, "diff": diff, "rationale": rationale},
        )
        return stored

    def review(
        self, suggestion_id: str, action: str, comment: str = "", role: str = "reviewer2"
    ) -> dict[str, Any]:
        reviewed: dict[str, Any] = self.call(
            role,
            "POST",
            "/suggest/review",
            json={"id": suggestion_id, "action": action, "comment": comment},
        )
        return reviewed
