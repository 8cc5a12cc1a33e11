"""Helpers for the CLI tests (a unique module name: see tests/watchdog/conftest.py)."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
from click.testing import CliRunner, Result

from storykit.testing import wait_until
from storykit_cli.main import cli

DEADLINE = 30.0  # seconds; a bound for what should take well under one
PLUGIN_DIR = Path(__file__).parent / "plugin"
ADMIN_KEY = "alice-admin-key-0123456789"
AGENT_KEY = "bot-agent-key-0123456789"
REVIEWER_KEY = "carol-reviewer-key-0123456789"
API_TOKENS = f"alice:admin={ADMIN_KEY},bot:agent={AGENT_KEY},carol:reviewer={REVIEWER_KEY}"
#: Settings every test runs with, in the CLI's process and in servers alike.
PLUGIN_ENV = {"STORYKIT_LOAD_PLUGINS": "cli-fakes", "PR_BACKEND": "fake-pr"}
#: Variables from the developer's environment that would change what a test sees.
CLEARED = (
    "STORYKIT_URL",
    "STORYKIT_API_KEY",
    "STORYKIT_DATA_DIR",
    "NO_COLOR",
    "API_TOKENS",
    "DB_PATH",
    "CLI_FAKES_REFINER",
    "CLI_FAKES_BROKEN",
    "COLUMNS",
    "STORYKIT_TEST_MODE",
)


def write_dist_info(site: Path) -> None:
    """Make the fake plugins an installed distribution with a ``storykit`` entry point."""
    info = site / "storykit_cli_fakes-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: storykit-cli-fakes\nVersion: 0.1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[storykit]\ncli-fakes = storykit_cli_fakes\n", encoding="utf-8"
    )


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    (path / "a.py").write_text("a = 1\n", encoding="utf-8")
    (path / "b.py").write_text("b = 2\n", encoding="utf-8")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return path


def diff_text(path: str = "a.py", added: str = "a = 1  # checked") -> str:
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-a = 1\n+{added}\n"
    )


def storykit(*args: str, input: str | None = None, color: bool = False) -> Result:
    """Run the CLI in this process; unexpected exceptions propagate (a bug is a failure)."""
    return CliRunner().invoke(cli, list(args), input=input, color=color, catch_exceptions=False)


def ok_json(*args: str, input: str | None = None) -> Any:
    result = storykit(*args, "--json", input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_error_line(result: Result, code: int) -> str:
    """Assert a failure is exactly one ``error:`` line on stderr with ``code``; return it."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def subprocess_env(extra: Mapping[str, str], python_path: Sequence[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(PLUGIN_ENV)
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join([*python_path, env.get("PYTHONPATH", "")]).strip(os.pathsep)
    return env


class Server:
    """``python -m storykit_cli serve`` as a real process, stoppable and restartable."""

    def __init__(self, *, data_dir: Path, env: Mapping[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = dict(env)
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "storykit_cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_healthy()

    def wait_healthy(self) -> None:
        """Poll ``/health`` until it answers 200; fail at once if the process exits."""
        process = self.process
        assert process is not None

        def healthy() -> bool:
            if (code := process.poll()) is not None:
                raise AssertionError(f"server exited with {code}:\n{self.log.read_text()}")
            try:
                return httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_until(healthy, what="the server to answer /health", deadline=DEADLINE)
        except AssertionError as exc:
            if "gave up" not in str(exc):
                raise
            raise AssertionError(f"{exc}:\n{self.log.read_text()}") from None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class LineReader:
    """A subprocess's output lines, read on a thread, taken with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next(self, timeout: float = DEADLINE) -> str:
        line = self._lines.get(timeout=timeout)
        if line is None:
            raise AssertionError("the process closed its output")
        return line

    def join(self) -> None:
        self._thread.join(timeout=DEADLINE)


_NORMALISE = [
    (re.compile(r"\b(sug|plan|dec|run)_[0-9A-Z]{26}\b"), r"\1_ID"),
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?(\+00:00)?"), "TIME"),
    (re.compile(r"sha256:[0-9a-f]{64}"), "sha256:HASH"),
    (re.compile(r"storykit/plan-[0-9a-z]{26}"), "storykit/plan-ID"),
]


def normalise(text: str, *actors: str) -> str:
    """Text with ids, times, hashes and the acting user's name replaced by placeholders."""
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    for actor in actors:
        text = re.sub(rf"\b{re.escape(actor)}\b", "ACTOR", text)
    return text


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not the values themselves (keys that
    are ids, as in a variant's ``suggestion_hashes``, count as one placeholder)."""
    if isinstance(value, dict):
        return {normalise(k): shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__
