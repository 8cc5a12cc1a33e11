"""Run the web host on Hypercorn (asyncio worker by default, trio on request)."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import anyio
from hypercorn.config import Config

from storykit.auth import generate_key, parse_api_tokens
from storykit.errors import StorykitError
from storykit.settings import Settings
from storykit_quart.app import create_app
from storykit_quart.logs import configure_logging

__all__ = ["PortInUse", "ensure_key", "find_free_port", "serve"]

SHUTDOWN_GRACE = 2.0


class PortInUse(StorykitError):
    status = 409
    title = "Port in use"

    def __init__(self, host: str, port: int, free: int | None) -> None:
        hint = f"; use --port {free}" if free else ""
        super().__init__(f"port {port} on {host} is already in use{hint}")
        self.free = free


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


def ensure_key(settings: Settings, say: Callable[[str], None]) -> Settings:
    """With no ``API_TOKENS``, use (or make once) an admin key kept in the data directory.

    The key file is readable by its owner only; the key is printed to the terminal
    once when it is made, and never logged.
    """
    if settings.api_keys:
        return settings
    path = settings.data_dir / "api-key"
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        say(f"API_TOKENS is not set: using the admin key kept in {path}")
    else:
        key = generate_key()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(key + "\n")
        say(f"API_TOKENS is not set: generated an admin key (kept in {path}):\n\n    {key}\n")
    return dataclasses.replace(settings, api_keys=parse_api_tokens(f"admin:admin={key}"))


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
    if not _port_free(host, port):
        raise PortInUse(host, port, find_free_port(host, port))
    settings.ensure_dirs()
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
    say(f"storykit {worker} worker on http://{host}:{port}  (data: {settings.data_dir})")
    say(f"dashboard: http://{shown}:{port}/story/ui")
    if app.extensions.get("storykit_mcp") is not None:
        say(f"MCP for coding agents: http://{shown}:{port}/mcp")
    else:
        say("MCP for coding agents: not served (pip install 'storykit[mcp]')")
    _write_state(state_file, host, port)
    try:
        if worker == "trio":
            import trio
            from hypercorn.trio import serve as trio_serve

            trio.run(lambda: trio_serve(app, config, shutdown_trigger=shutdown_trigger))
        else:
            import asyncio

            from hypercorn.asyncio import serve as asyncio_serve

            asyncio.run(asyncio_serve(app, config, shutdown_trigger=shutdown_trigger))
    finally:
        state_file.unlink(missing_ok=True)
