"""The status file ``DATA_DIR/watchdog/status.json`` and the other paths the watchdog uses.

Other programs (the VS Code extension, ``storykit-watchdog status``) read the status file,
so its keys are a contract: see ``docs/watchdog.md``. It is always replaced atomically, so a
reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "ExitInfo",
    "Paths",
    "Reason",
    "State",
    "Status",
    "format_status",
    "now_iso",
    "pid_alive",
    "read_status",
    "write_status",
]

State = Literal["starting", "running", "backoff", "stopping", "stopped", "failed"]
Reason = Literal["exited", "crashed", "unhealthy", "stopped"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True)
class Paths:
    """Where the watchdog keeps its files for one data directory."""

    data_dir: Path

    @property
    def dir(self) -> Path:
        return self.data_dir / "watchdog"

    @property
    def status(self) -> Path:
        return self.dir / "status.json"

    @property
    def lock(self) -> Path:
        return self.dir / "lock"

    @property
    def stop(self) -> Path:
        return self.dir / "stop"

    @property
    def server_log(self) -> Path:
        return self.dir / "server.log"

    @property
    def server_state(self) -> Path:
        """Written by the server itself: ``{"pid", "host", "port", "url"}``."""
        return self.data_dir / "server.json"


@dataclass(frozen=True, kw_only=True)
class ExitInfo:
    code: int | None
    signal: int | None
    reason: Reason
    at: str = field(default_factory=now_iso)

    @classmethod
    def from_returncode(cls, returncode: int | None, reason: Reason) -> ExitInfo:
        if returncode is not None and returncode < 0:
            return cls(code=None, signal=-returncode, reason=reason)
        return cls(code=returncode, signal=None, reason=reason)


@dataclass(frozen=True, kw_only=True)
class Status:
    state: State
    watchdog_pid: int
    pid: int | None = None
    port: int | None = None
    url: str | None = None
    restarts: int = 0
    last_exit: ExitInfo | None = None
    next_retry_at: str | None = None
    updated_at: str = field(default_factory=now_iso)
    command: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        last = self.last_exit
        return {
            "state": self.state,
            "watchdog_pid": self.watchdog_pid,
            "pid": self.pid,
            "port": self.port,
            "url": self.url,
            "restarts": self.restarts,
            "last_exit": None
            if last is None
            else {"code": last.code, "signal": last.signal, "reason": last.reason, "at": last.at},
            "next_retry_at": self.next_retry_at,
            "updated_at": self.updated_at,
            "command": list(self.command),
        }


def write_status(path: Path, status: Status) -> None:
    """Replace ``path`` atomically with ``status`` as JSON."""
    data = json.dumps(status.to_json(), indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".status-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it private; readers may run as another user
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_status(path: Path) -> dict[str, Any] | None:
    """The status file as a dict, or None when it is absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    # The state letter follows the parenthesised command name, which may itself contain ")".
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def format_status(data: dict[str, Any], *, watchdog_alive: bool) -> str:
    """A human-readable rendering of a status dict."""
    lines = [f"state:      {data.get('state')}"]
    wd = f"pid {data.get('watchdog_pid')}"
    if not watchdog_alive:
        wd += " (not running; this status is stale)"
    lines.append(f"watchdog:   {wd}")
    if data.get("pid") is not None or data.get("url"):
        server = f"pid {data.get('pid')}" if data.get("pid") is not None else "no process"
        if data.get("url"):
            server += f", {data['url']}"
        lines.append(f"server:     {server}")
    lines.append(f"restarts:   {data.get('restarts', 0)}")
    last = data.get("last_exit")
    if isinstance(last, dict):
        how = (
            f"signal {last.get('signal')}"
            if last.get("signal") is not None
            else f"code {last.get('code')}"
        )
        lines.append(f"last exit:  {last.get('reason')} ({how}) at {last.get('at')}")
    if data.get("next_retry_at"):
        lines.append(f"next retry: {data['next_retry_at']}")
    lines.append(f"updated:    {data.get('updated_at')}")
    command = data.get("command")
    if isinstance(command, list):
        lines.append(f"command:    {shlex.join(str(c) for c in command)}")
    return "\n".join(lines)
