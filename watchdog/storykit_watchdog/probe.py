"""The HTTP health probe: GET the health URL; any 2xx answer within the timeout is healthy."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["ProbeResult", "probe"]


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    ok: bool
    detail: str


def probe(url: str, *, timeout: float) -> ProbeResult:
    """One probe. Never raises for network errors: they are an unhealthy result."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", path, headers={"User-Agent": "storykit-watchdog"})
        response = conn.getresponse()
        response.read(64 * 1024)
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(ok=False, detail=f"{type(exc).__name__}: {exc}".rstrip(": "))
    finally:
        conn.close()
    ok = 200 <= response.status < 300
    return ProbeResult(ok=ok, detail=f"HTTP {response.status}")
