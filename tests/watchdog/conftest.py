"""Fixtures for the watchdog tests. The helpers live in ``watchdog_helpers`` (a unique name:
conftest modules of different test folders would shadow one another)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # works under any --import-mode

from watchdog_helpers import DEADLINE, Watchdog, process_gone


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def watchdogs(tmp_path: Path) -> Iterator[Callable[..., Watchdog]]:
    """Start watchdogs; afterwards stop any still running and check nothing is left behind."""
    started: list[Watchdog] = []

    def start(*args: str, command: list[str], data_dir: Path | None = None) -> Watchdog:
        wd = Watchdog(data_dir or tmp_path / "data", list(args), command)
        started.append(wd)
        return wd

    yield start

    for wd in started:
        if wd.proc.poll() is None:
            wd.proc.send_signal(signal.SIGTERM)
            try:
                wd.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                wd.proc.kill()
                wd.proc.wait()
                raise AssertionError(f"watchdog ignored SIGTERM:\n{wd.stderr()}") from None
    for wd in started:
        for pid in wd.child_pids():
            assert process_gone(pid), f"child {pid} outlived its watchdog"
