from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from storykit.testing import wait_until
from storykit_watchdog.status import (
    ExitInfo,
    Status,
    format_status,
    pid_alive,
    read_status,
    write_status,
)

KEYS = {
    "state",
    "watchdog_pid",
    "pid",
    "port",
    "url",
    "restarts",
    "last_exit",
    "next_retry_at",
    "updated_at",
    "command",
}


def test_status_file_has_exactly_the_documented_keys(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    status = Status(
        state="backoff",
        watchdog_pid=123,
        pid=None,
        port=8001,
        url="http://127.0.0.1:8001",
        restarts=2,
        last_exit=ExitInfo.from_returncode(-9, "unhealthy"),
        next_retry_at="2030-01-01T00:00:00.000Z",
        command=("storykit", "serve"),
    )
    write_status(path, status)
    data = json.loads(path.read_text())
    assert set(data) == KEYS
    assert data["last_exit"]["code"] is None
    assert data["last_exit"]["signal"] == 9
    assert data["last_exit"]["reason"] == "unhealthy"
    assert set(data["last_exit"]) == {"code", "signal", "reason", "at"}
    assert data["command"] == ["storykit", "serve"]
    assert data["updated_at"].endswith("Z")
    assert read_status(path) == data


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    for n in range(5):
        write_status(path, Status(state="running", watchdog_pid=1, restarts=n))
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]
    assert read_status(path) is not None
    assert read_status(path)["restarts"] == 4  # type: ignore[index]


def test_read_status_tolerates_absent_and_corrupt_files(tmp_path: Path) -> None:
    assert read_status(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text("{half")
    assert read_status(tmp_path / "bad.json") is None


def test_exit_info_from_returncode() -> None:
    assert ExitInfo.from_returncode(3, "crashed").code == 3
    info = ExitInfo.from_returncode(-15, "stopped")
    assert (info.code, info.signal) == (None, 15)


def test_format_status() -> None:
    status = Status(
        state="running",
        watchdog_pid=42,
        pid=43,
        url="http://127.0.0.1:8001",
        restarts=1,
        last_exit=ExitInfo(code=1, signal=None, reason="crashed", at="T"),
        command=("storykit", "serve", "--port", "8001"),
    ).to_json()
    text = format_status(status, watchdog_alive=True)
    assert "state:      running" in text
    assert "pid 43, http://127.0.0.1:8001" in text
    assert "crashed (code 1) at T" in text
    assert "storykit serve --port 8001" in text
    assert "stale" in format_status(status, watchdog_alive=False)


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Not reaped yet, so a zombie once it has exited: poll, don't wait(), to keep it one.
        wait_until(lambda: not pid_alive(proc.pid), what="the child to become a zombie")
        assert Path(f"/proc/{proc.pid}").exists()
    finally:
        proc.wait()
