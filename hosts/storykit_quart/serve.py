"""Run the web host on Hypercorn (asyncio worker by default; uvloop or trio on request)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
from hypercorn.config import Config

from storykit.auth import generate_key, parse_api_tokens
from storykit.errors import StorykitError
from storykit.paths import find_repo_root
from storykit.settings import Settings, SettingsError
from storykit_quart.app import create_app
from storykit_quart.logs import configure_logging

__all__ = ["AlreadyRunning", "PortInUse", "check_repo", "ensure_key", "find_free_port", "serve"]

SHUTDOWN_GRACE = 2.0


class PortInUse(StorykitError):
    status = 409
    title = "Port in use"

    def __init__(self, host: str, port: int, free: int | None) -> None:
        hint = f"; use --port {free} (with make: make serve PORT={free})" if free else ""
        super().__init__(f"port {port} on {host} is already in use{hint}")
        self.free = free


class AlreadyRunning(StorykitError):
    status = 409
    title = "Already running"


def check_repo(settings: Settings) -> None:
    """Stop start-up when ``REPO_PATH`` (default: the current directory) is no git repository:
    every generate, pre-review and PR would fail later, one by one."""
    path = settings.repo_path
    if not path.is_dir():
        raise SettingsError(f"REPO_PATH={str(path)!r}: no such directory")
    if find_repo_root(path) is None:
        where = (
            f"REPO_PATH={str(path)!r}"
            if settings.get("REPO_PATH")
            else f"the current directory ({path}; REPO_PATH is not set)"
        )
        raise SettingsError(
            f"{where} is not a git repository: point REPO_PATH at your repository,"
            " or run `git init` there"
        )


@contextlib.contextmanager
def _single_server(settings: Settings) -> Iterator[None]:
    """Hold ``server.lock`` in the data directory while serving: a second server on the same
    data directory is refused (it would share the database and overwrite ``server.json``,
    which the watchdog and the VS Code extension read). The kernel drops the lock when the
    process dies, even by ``kill -9``."""
    lock = settings.data_dir / "server.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(_running_server(settings)) from None
        yield
    finally:
        os.close(fd)


def _running_server(settings: Settings) -> str:
    state = settings.data_dir / "server.json"
    try:
        info = json.loads(state.read_text(encoding="utf-8"))
        running = f" (pid {int(info['pid'])}, {info['url']})"
    except (OSError, ValueError, KeyError, TypeError):
        running = ""
    return (
        f"a storykit server is already running on the data directory {settings.data_dir}"
        f"{running}; use that one, stop it first, or give this one another STORYKIT_DATA_DIR"
    )


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def find_free_port(host: str, start: int) -> int | None:
    """The first free port after ``start`` (the seed's habit: 8001, then 8003 …)."""
    for port in range(start + 1, min(start + 100, 65535)):
        if _port_free(host, port):
            return port
    return None


#: The keys ``storykit serve`` makes when ``API_TOKENS`` is not set: one for you (the
#: dashboard, the CLI, reviews) and one for a coding agent, since nobody can approve a
#: suggestion they proposed themselves.
KEY_FILES = {"admin": "api-key", "agent": "agent-key"}


def _your_name() -> str:
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no USER and no passwd entry (some containers)
        user = ""
    name = re.sub(r"[^A-Za-z0-9._@-]", "", user)[:64].lstrip("._@-")
    return name if name and name != "agent" else "you"


def _kept_key(path: Path) -> tuple[str, bool]:
    """The key kept in ``path``, or a new one written there (owner-only); and whether it is new."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip(), False
    key = generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    return key, True


def ensure_key(settings: Settings, say: Callable[[str], None]) -> Settings:
    """With no ``API_TOKENS``, use (or make once) two keys kept in the data directory: an
    admin key for you and an agent key for a coding agent.

    The key files are readable by their owner only; a key is printed to the terminal once,
    when it is made, and never logged.
    """
    files = {role: settings.data_dir / name for role, name in KEY_FILES.items()}
    if settings.api_keys:
        kept = [p.name for p in files.values() if p.exists()]
        if kept:
            say(
                f"API_TOKENS is set, so the generated keys in {settings.data_dir}"
                f" ({', '.join(kept)}) are not accepted: use a key from API_TOKENS"
            )
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    you = _your_name()
    admin_key, admin_new = _kept_key(files["admin"])
    agent_key, agent_new = _kept_key(files["agent"])
    if admin_new or agent_new:
        lines = [
            "API_TOKENS is not set: generated keys for this data directory"
            " (shown only now; kept, readable by you only, in the files named):",
            "",
        ]
        if admin_new:
            lines += [
                f"  {you} (admin: the dashboard, reviews, the CLI's --key)  {files['admin']}",
                f"      {admin_key}",
            ]
        if agent_new:
            lines += [
                f"  agent (agent: for a coding agent that submits suggestions)  {files['agent']}",
                f"      {agent_key}",
            ]
        say("\n".join([*lines, ""]))
    else:
        say(
            f"API_TOKENS is not set: using the keys kept in {files['admin']} (yours, admin)"
            f" and {files['agent']} (for an agent); each data directory has its own keys"
        )
    entries = f"{you}:admin={admin_key},agent:agent={agent_key}"
    return dataclasses.replace(settings, api_keys=parse_api_tokens(entries))


def _write_state(path: Path, host: str, port: int) -> None:
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "host": host, "port": port, "url": url}))
    os.replace(tmp, path)


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    worker: str = "asyncio",
    say: Callable[[str], None] = print,
) -> None:
    """Serve until SIGINT/SIGTERM. Raises :class:`PortInUse` naming a free port."""
    check_repo(settings)
    settings.ensure_dirs()
    with _single_server(settings):
        _serve(settings, host=host, port=port, worker=worker, say=say)


def _serve(
    settings: Settings, *, host: str, port: int, worker: str, say: Callable[[str], None]
) -> None:
    if not _port_free(host, port):
        raise PortInUse(host, port, find_free_port(host, port))
    settings = ensure_key(settings, say)
    configure_logging(settings.log_level, settings.log_file)
    app = create_app(settings, trio=worker == "trio", freeze_gc=True)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # through our JSON handler
    config.graceful_timeout = SHUTDOWN_GRACE
    config.keep_alive_timeout = 75
    state_file = settings.data_dir / "server.json"
    host_state = app.extensions["storykit"]

    async def shutdown_trigger() -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                break
        host_state.end_streams()  # SSE streams end now; clients resume with Last-Event-ID

    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    say(f"storykit {worker} worker on http://{host}:{port}")
    say(f"repository: {settings.repo_path}  (REPO_PATH)")
    say(f"data: {settings.data_dir}")
    say(f"dashboard: http://{shown}:{port}/story/ui")
    if app.extensions.get("storykit_mcp") is not None:
        say(f"MCP for coding agents: http://{shown}:{port}/mcp")
    else:
        say("MCP for coding agents: not served (pip install 'storykit[mcp]')")
    if shutil.which("storykit") is None:
        bin_dir = Path(sys.executable).parent
        say(
            f"the storykit command is not on your PATH: run {bin_dir / 'storykit'},"
            f" or `source {bin_dir / 'activate'}` first"
        )
    _write_state(state_file, host, port)
    try:
        if worker == "trio":
            import trio
            from hypercorn.trio import serve as trio_serve

            trio.run(lambda: trio_serve(app, config, shutdown_trigger=shutdown_trigger))
        else:
            import asyncio

            from hypercorn.asyncio import serve as asyncio_serve

            loop_factory = None
            if worker == "uvloop":
                import uvloop

                loop_factory = uvloop.new_event_loop
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(asyncio_serve(app, config, shutdown_trigger=shutdown_trigger))
    finally:
        state_file.unlink(missing_ok=True)
