"""Helpers the web benchmarks share: free ports, server processes, health polling, /proc.

Servers run as child processes so their CPU time and memory can be read apart from the
load generator's. Nothing here sleeps to "let a server start": every wait polls a
condition against a deadline and fails with the server's own output when it is missed.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

__all__ = [
    "AGENT_KEY",
    "BENCH_KEY",
    "HOST",
    "PYTHON",
    "REPO",
    "Server",
    "free_port",
    "http_status",
    "machine_cpu_seconds",
    "raise_open_files",
    "start_server",
    "storykit_argv",
    "storykit_env",
    "wait_for",
]

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
HOST = "127.0.0.1"
BENCH_KEY = "benchkey123"
AGENT_KEY = "agentkey123"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port(host: str = HOST) -> int:
    """A port the kernel says is free now (bind to 0). Another process could still take
    it before the server binds; on loopback in a benchmark that race is not worth more."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def raise_open_files(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (children inherit it).

    Returns the new soft limit, which is capped by the hard limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def machine_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used (user + nice + system, /proc/stat).

    Interrupt and softirq time is left out: loopback TCP is processed there on behalf of
    the server and the load generator, so it belongs to the measurement. What remains after
    subtracting the server's and the load generator's own time is other work on the
    machine: noise, shown next to the figures so a disturbed run can be recognised.
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:4]
    return sum(int(v) for v in fields) / _CLK_TCK


def wait_for(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    alive: Callable[[], None] | None = None,
) -> None:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass (then TimeoutError).

    ``alive`` is called on every round and may raise to stop early (a server that died).
    """
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        if condition():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def http_status(url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 2.0) -> int:
    """The status code of a GET, or 0 when nothing answered (refused, reset, timed out)."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)
    except (OSError, ValueError):
        return 0


class Server:
    """A server running as a child process, its output going to a log file."""

    def __init__(self, name: str, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.url = url
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def output_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(
                f"{self.name} exited with code {code}; its last output:\n{self.output_tail()}"
            )

    def rss_kib(self) -> int:
        """Resident memory (VmRSS) in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        fields = stat[stat.rindex(")") + 2 :].split()
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / _CLK_TCK

    def pin(self, cpus: set[int]) -> None:
        """Keep the server on ``cpus`` so the load generator does not share its core."""
        os.sched_setaffinity(self.pid, cpus)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (each server here shuts down gracefully on it), SIGKILL after ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def start_server(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    log: Path,
    env: Mapping[str, str] | None = None,
    health_path: str = "/health",
    timeout: float = 30.0,
) -> Iterator[Server]:
    """Start ``argv``, wait until ``GET health_path`` answers 200, and stop it on exit."""
    url = f"http://{HOST}:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ if env is None else env),
            cwd=REPO,
        )
    server = Server(name, url, process, log)
    try:
        wait_for(
            lambda: http_status(url + health_path) == 200,
            timeout=timeout,
            what=f"{name} to answer {health_path}",
            alive=server.check_alive,
        )
        yield server
    finally:
        server.stop()


def storykit_argv(port: int, data_dir: Path, *, worker: str = "asyncio") -> list[str]:
    """``storykit serve`` through the interpreter running the benchmark (its venv)."""
    return [
        PYTHON,
        "-m",
        "storykit_cli",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--worker",
        worker,
        "--data-dir",
        str(data_dir),
    ]


def storykit_env(log_file: Path | None, **extra: str) -> dict[str, str]:
    """The environment for a benchmark run: two keys, limits out of the way, no plugins.

    ``STORYKIT_LOAD_PLUGINS`` empty loads none, so only the host and the core are measured.
    Request logs go to ``log_file`` (or /dev/null) so no terminal slows the server down.
    """
    env = dict(os.environ)
    env.update(
        {
            "API_TOKENS": f"bench:admin={BENCH_KEY},agent:agent={AGENT_KEY}",
            "RATE_LIMIT_RPS": "1000000",
            "RATE_LIMIT_BURST": "1000000",
            "STORYKIT_LOAD_PLUGINS": "",
            "LOG_FILE": str(log_file) if log_file is not None else os.devnull,
        }
    )
    env.update(extra)
    return env
