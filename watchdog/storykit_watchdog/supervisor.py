"""The supervision loop: start the child, watch it, restart it with backoff, stop it on request.

The loop is single-threaded and polls every ``TICK`` seconds: child exit, stop-file, parent
pid and signals (whose handlers only set a flag). A probe blocks the loop for at most
``probe_timeout``. The only other thread copies the child's output into ``server.log``.
"""

from __future__ import annotations

import logging
import os
import random as _random
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from storykit_watchdog._procs import group_alive, signal_group
from storykit_watchdog.backoff import Backoff, BackoffPolicy, GiveUp
from storykit_watchdog.discovery import (
    Target,
    target_from_command,
    target_from_state_file,
    target_from_url,
)
from storykit_watchdog.logs import OutputPump, RotatingWriter, log_event
from storykit_watchdog.probe import ProbeResult, probe
from storykit_watchdog.status import (
    ExitInfo,
    Paths,
    Reason,
    Status,
    now_iso,
    pid_alive,
    write_status,
)

__all__ = ["Config", "Supervisor"]

TICK = 0.1
# While the server starts, probe at least this often so "running" is reported promptly.
GRACE_PROBE_INTERVAL = 0.5


@dataclass(frozen=True, kw_only=True)
class Config:
    command: tuple[str, ...]
    data_dir: Path
    health_url: str | None = None
    probe: bool = True
    probe_interval: float = 5.0
    probe_timeout: float = 2.0
    probe_failures: int = 3
    grace: float = 10.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    stable_after: float = 30.0
    max_failures: int | None = None
    failure_window: float = 300.0
    kill_timeout: float = 10.0
    parent_pid: int | None = None
    log_max_bytes: int = 5 * 1024 * 1024
    log_backups: int = 3


def _iso_in(seconds: float) -> str:
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Supervisor:
    """Runs ``config.command`` until stopped. The caller holds the instance lock."""

    def __init__(self, config: Config, *, random: Callable[[], float] = _random.random) -> None:
        self.config = config
        self.paths = Paths(data_dir=config.data_dir)
        self._backoff = Backoff(config.backoff, random=random)
        self._give_up = GiveUp(config.max_failures, config.failure_window)
        self._static_target: Target | None = (
            target_from_url(config.health_url)
            if config.health_url
            else target_from_command(config.command)
        )
        self._stop_reason: str | None = None
        self._status = Status(state="starting", watchdog_pid=os.getpid(), command=config.command)
        self._proc: subprocess.Popen[bytes] | None = None
        self._pump: OutputPump | None = None
        self._writer: RotatingWriter | None = None
        self._started = 0.0  # monotonic time of the last spawn

    # -- public ---------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until stopped (0) or until the give-up policy ends it (1)."""
        self.paths.dir.mkdir(parents=True, exist_ok=True)
        self.paths.stop.unlink(missing_ok=True)  # left over from an earlier stop
        self._writer = RotatingWriter(
            self.paths.server_log,
            max_bytes=self.config.log_max_bytes,
            backups=self.config.log_backups,
        )
        restore = self._install_signal_handlers()
        try:
            return self._loop()
        except Exception:
            log_event("watchdog.error", level=logging.ERROR, exc_info=True)
            self._set(state="failed", pid=None, next_retry_at=None)
            raise
        finally:
            if self._proc is not None and self._proc.returncode is None:
                self._end_child("stopped")
            restore()
            self._writer.close()

    def request_stop(self, reason: str) -> None:
        self._stop_reason = self._stop_reason or reason

    # -- the loop -------------------------------------------------------------------------

    def _loop(self) -> int:
        log_event(
            "watchdog.started",
            data_dir=str(self.config.data_dir),
            command=list(self.config.command),
            health_url=self._static_target.health_url if self._static_target else None,
        )
        self._set(state="starting")
        first = True
        while not self._should_stop():
            exit_info = self._run_child(restart=not first)
            first = False
            if exit_info is None:
                break  # stopped on request
            if self._give_up.record_failure():
                self._set(state="failed", next_retry_at=None)
                log_event(
                    "watchdog.gave_up",
                    level=logging.ERROR,
                    max_failures=self.config.max_failures,
                    failure_window=self.config.failure_window,
                )
                return 1
            delay = self._backoff.next_delay()
            self._set(state="backoff", next_retry_at=_iso_in(delay))
            log_event("child.backoff", delay=round(delay, 3), failures=self._backoff.failures)
            if self._sleep(delay):
                break
        self._set(state="stopped", pid=None, next_retry_at=None)
        log_event("watchdog.stopped", reason=self._stop_reason)
        return 0

    def _run_child(self, *, restart: bool) -> ExitInfo | None:
        """Start the child and watch it; its exit, or None when a stop was requested."""
        cfg = self.config
        if not self._spawn(restart=restart):
            info = ExitInfo(code=127, signal=None, reason="crashed")  # as a shell reports it
            self._set(last_exit=info)
            return info
        proc = self._proc
        assert proc is not None
        started = self._started
        started_wall = time.time()
        healthy = not cfg.probe
        stable = False
        grace_end = started + cfg.grace
        failures = 0
        next_probe = started + min(cfg.probe_interval, GRACE_PROBE_INTERVAL)
        while True:
            if self._should_stop():
                self._set(state="stopping")
                log_event("child.stopping", pid=proc.pid, reason=self._stop_reason)
                self._end_child("stopped")
                return None
            if proc.poll() is not None:
                return self._end_child("exited" if proc.returncode == 0 else "crashed")
            now = time.monotonic()
            if healthy and not stable and now - started >= cfg.stable_after:
                stable = True
                self._backoff.reset()
                log_event("child.stable", pid=proc.pid, uptime=round(now - started, 3))
            if cfg.probe and now >= next_probe:
                in_grace = not healthy and now < grace_end
                result = self._probe(proc.pid, started_wall)
                interval = cfg.probe_interval
                next_probe = time.monotonic() + (
                    min(interval, GRACE_PROBE_INTERVAL) if in_grace else interval
                )
                if result.ok:
                    failures = 0
                    if not healthy:
                        healthy = True
                        self._set(state="running")
                        log_event("child.healthy", pid=proc.pid, url=self._status.url)
                elif not in_grace:
                    failures += 1
                    log_event(
                        "probe.failed",
                        level=logging.WARNING,
                        pid=proc.pid,
                        url=self._status.url,
                        detail=result.detail,
                        consecutive=failures,
                    )
                    if failures >= cfg.probe_failures:
                        return self._end_child("unhealthy")
                continue  # a probe may have taken a while: check the rest again first
            time.sleep(TICK)

    # -- the child ------------------------------------------------------------------------

    def _spawn(self, *, restart: bool) -> bool:
        cfg = self.config
        assert self._writer is not None
        env = dict(os.environ)
        env["STORYKIT_DATA_DIR"] = str(cfg.data_dir)
        env.setdefault("PYTHONUNBUFFERED", "1")  # so the log shows output as it happens
        restarts = self._status.restarts + (1 if restart else 0)
        try:
            proc = subprocess.Popen(
                cfg.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, signalled as a whole
                env=env,
            )
        except OSError as exc:
            log_event(
                "child.spawn_failed", level=logging.ERROR, command=list(cfg.command), error=str(exc)
            )
            self._writer.write(f"--- storykit-watchdog: cannot start: {exc} ---\n".encode())
            self._set(restarts=restarts, pid=None)
            return False
        assert proc.stdout is not None
        self._proc = proc
        self._started = time.monotonic()
        line = f"--- storykit-watchdog: started pid {proc.pid}: {shlex.join(cfg.command)} ---\n"
        self._writer.write(line.encode())
        self._pump = OutputPump(proc.stdout, self._writer, name=f"pump-{proc.pid}")
        target = self._static_target
        self._set(
            state="starting" if cfg.probe else "running",
            pid=proc.pid,
            restarts=restarts,
            next_retry_at=None,
            port=target.port if target else None,
            url=target.url if target else None,
        )
        last = self._status.last_exit
        log_event(
            "child.started",
            pid=proc.pid,
            restarts=restarts,
            reason=f"restart after {last.reason}" if restart and last else "start",
            command=list(cfg.command),
        )
        return True

    def _end_child(self, reason: Reason) -> ExitInfo:
        """Stop the child's whole process group (TERM, then KILL after the kill timeout),
        reap it, and record how it ended. Also used after the child exited by itself, to
        clear out what it left behind in its group."""
        proc = self._proc
        assert proc is not None
        pgid = proc.pid
        deadline = time.monotonic() + self.config.kill_timeout
        signal_group(pgid, signal.SIGTERM)
        while proc.poll() is None or group_alive(pgid):
            if time.monotonic() >= deadline:
                log_event(
                    "child.killed",
                    level=logging.WARNING,
                    pid=proc.pid,
                    after=self.config.kill_timeout,
                )
                signal_group(pgid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.05)
        if self._pump is not None:
            self._pump.join(timeout=2.0)
        info = ExitInfo.from_returncode(proc.returncode, reason)
        assert self._writer is not None
        how = f"signal {info.signal}" if info.signal is not None else f"code {info.code}"
        self._writer.write(f"--- storykit-watchdog: pid {proc.pid} ended ({how}) ---\n".encode())
        self._set(last_exit=info, pid=None)
        log_event(
            "child.exited",
            level=logging.INFO if reason == "stopped" else logging.WARNING,
            pid=proc.pid,
            reason=reason,
            code=info.code,
            signal=info.signal,
            uptime=round(time.monotonic() - self._started, 3),
        )
        return info

    def _probe(self, pgid: int, since: float) -> ProbeResult:
        target = self._static_target or target_from_state_file(
            self.paths.server_state, pgid=pgid, since=since - 1.0
        )
        if target is None:
            return ProbeResult(ok=False, detail=f"no address yet (see {self.paths.server_state})")
        if target.url != self._status.url:
            self._set(port=target.port, url=target.url)
        return probe(target.health_url, timeout=self.config.probe_timeout)

    # -- stopping -------------------------------------------------------------------------

    def _should_stop(self) -> bool:
        if self._stop_reason is None:
            if self.paths.stop.exists():
                self._stop_reason = "stop-file"
            elif self.config.parent_pid is not None and not pid_alive(self.config.parent_pid):
                self._stop_reason = f"parent {self.config.parent_pid} gone"
        return self._stop_reason is not None

    def _sleep(self, seconds: float) -> bool:
        """Sleep, waking for a stop request; True if one came."""
        end = time.monotonic() + seconds
        while not self._should_stop():
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(TICK, left))
        return True

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # signal handlers can only be set from the main thread

        def handler(signum: int, frame: Any) -> None:
            self.request_stop(f"signal {signal.Signals(signum).name}")

        sigs = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        previous = {s: signal.signal(s, handler) for s in sigs}

        def restore() -> None:
            for s, h in previous.items():
                signal.signal(s, h)

        return restore

    def _set(self, **changes: Any) -> None:
        self._status = replace(self._status, updated_at=now_iso(), **changes)
        write_status(self.paths.status, self._status)
