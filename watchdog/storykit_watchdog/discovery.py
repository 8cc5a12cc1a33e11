"""Where to probe: the server's base URL from its command line or from its state file."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["Target", "target_from_command", "target_from_state_file", "target_from_url"]

_PORT_FLAGS = ("--port", "-p")
_HOST_FLAGS = ("--host", "--bind", "-b")
# A server bound to every interface is reached through loopback.
_WILDCARD = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "*": "127.0.0.1"}  # noqa: S104


@dataclass(frozen=True, kw_only=True)
class Target:
    """A server to probe: ``url`` is the base URL (no path), ``health_url`` what is probed."""

    host: str
    port: int
    scheme: str = "http"
    health_path: str = "/health"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def health_url(self) -> str:
        return self.url + self.health_path


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def _split_bind(value: str) -> tuple[str | None, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    if value.startswith("unix:") or value.startswith("fd://"):
        return None, None
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, _port(rest[1:]) if rest.startswith(":") else None
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        return host, _port(port)
    return value, None


def _option_values(argv: Sequence[str], flags: tuple[str, ...]) -> list[str]:
    """Values of ``--flag V``, ``--flag=V`` and ``-fV`` in order of appearance."""
    values: list[str] = []
    for i, arg in enumerate(argv):
        for flag in flags:
            if arg == flag and i + 1 < len(argv):
                values.append(argv[i + 1])
            elif flag.startswith("--") and arg.startswith(flag + "="):
                values.append(arg[len(flag) + 1 :])
            elif not flag.startswith("--") and arg.startswith(flag) and len(arg) > len(flag):
                values.append(arg[len(flag) :])
    return values


def target_from_command(argv: Sequence[str]) -> Target | None:
    """The server's address from options such as ``--port 8001``, ``--port=8001``, ``-p 8001``,
    ``--host H`` and ``--bind H[:P]``; None when no port is given. The last one given wins,
    as in most option parsers. Host defaults to 127.0.0.1."""
    host: str | None = None
    port: int | None = None
    for value in _option_values(argv, _HOST_FLAGS):
        if value.startswith("-"):
            continue  # a flag, not a value
        h, p = _split_bind(value)
        host = h if h is not None else host
        port = p if p is not None else port
    for value in _option_values(argv, _PORT_FLAGS):
        port = _port(value) or port
    if port is None:
        return None
    host = _WILDCARD.get(host or "", host or "127.0.0.1")
    return Target(host=host, port=port)


def target_from_url(url: str) -> Target:
    """A target for an explicit health URL (``--health-url``), probed as given."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(host=parts.hostname, port=port, scheme=parts.scheme, health_path=path)


def _in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except OSError:
        return False


def target_from_state_file(path: Path, *, pgid: int | None, since: float) -> Target | None:
    """The target from the server's state file (``{"pid", "host", "port", "url"}``).

    A file left behind by an earlier server is ignored: the pid in it must belong to the
    child's process group ``pgid``, or, when it has no pid, the file must be newer than
    ``since`` (a ``time.time()`` value).
    """
    try:
        st = path.stat()
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid = data.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool):
        if pgid is None or not _in_group(pid, pgid):
            return None
    elif st.st_mtime < since:
        return None
    url = data.get("url")
    if isinstance(url, str) and url:
        try:
            t = target_from_url(url)
        except ValueError:
            pass
        else:
            host = _WILDCARD.get(t.host, t.host)
            return Target(host=host, port=t.port, scheme=t.scheme)
    port = data.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return None
    raw_host = data.get("host")
    host = raw_host if isinstance(raw_host, str) else ""
    return Target(host=_WILDCARD.get(host, host), port=port)
