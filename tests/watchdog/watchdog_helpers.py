"""Helpers for the watchdog tests: real watchdog processes, and polling instead of sleeping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from storykit.testing import wait_until

REPO = Path(__file__).resolve().parents[2]
CHILDREN = Path(__file__).resolve().parent / "children"
DEADLINE = 20.0  # generous: a loaded 2-core CI machine must never hit it


def process_gone(pid: int) -> bool:
    """Independent of the code under test: no such pid, or only a zombie left."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def child_script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(CHILDREN / name), *args]


def watchdog_env() -> dict[str, str]:
    env = dict(os.environ)
    path = [str(REPO / "watchdog"), str(REPO)]
    if env.get("PYTHONPATH"):
        path.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(path)
    env.pop("STORYKIT_DATA_DIR", None)
    return env


def watchdog_cli(*args: str, timeout: float = DEADLINE) -> subprocess.CompletedProcess[str]:
    """Run ``storykit-watchdog ARGS`` to completion (for ``status``, ``stop``, a second start)."""
    return subprocess.run(
        [sys.executable, "-m", "storykit_watchdog", *args],
        env=watchdog_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Watchdog:
    """A watchdog process under test. Its stderr (JSON events) goes to a file, not a pipe."""

    def __init__(self, data_dir: Path, args: list[str], command: list[str]) -> None:
        self.data_dir = data_dir
        self.dir = data_dir / "watchdog"
        self.stderr_path = data_dir.parent / f"{data_dir.name}-watchdog.stderr"
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "storykit_watchdog",
                    "--data-dir",
                    str(data_dir),
                    *args,
                    "--",
                    *command,
                ],
                env=watchdog_env(),
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.dir / "status.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.stderr_path.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                found.append(event)
        return found

    def child_pids(self) -> list[int]:
        return [e["pid"] for e in self.events("child.started")]

    def wait_state(self, state: str, **expected: Any) -> dict[str, Any]:
        def matches() -> bool:
            s = self.status()
            return s.get("state") == state and all(s.get(k) == v for k, v in expected.items())

        try:
            wait_until(matches, what=f"state {state!r} {expected or ''}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nstatus: {self.status()}\n{self.stderr()}") from None
        return self.status()

    def wait_exit(self) -> int:
        try:
            return self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"watchdog did not exit; stderr:\n{self.stderr()}") from None

    def wait_log(self, text: str) -> None:
        log = self.dir / "server.log"
        wait_until(lambda: log.exists() and text in log.read_text(), what=f"{text!r} in server.log")

    def stop_file(self) -> None:
        (self.dir / "stop").touch()

    def stderr(self) -> str:
        return self.stderr_path.read_text()
