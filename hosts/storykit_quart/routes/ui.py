"""The dashboard: the page at ``/story/ui`` and its static files under ``/story/static/``.

The page is plain files (``storykit_quart/ui/``: one HTML template, ES modules, one
stylesheet) with no build step. It is made to run inside a VS Code webview too, so:

- no inline scripts, handlers or ``style`` attributes; the page carries a strict
  Content-Security-Policy with a fresh nonce on every response;
- static URLs carry a hash of the files (``/story/static/<version>/app.js``), so they
  can be cached for a year and a new release is fetched at once; relative ES module
  imports inherit the versioned prefix;
- the page may be framed (``frame-ancestors``) because, when framed, it never uses a
  key stored by the browser: it waits for its parent to post one (docs/dashboard.md).

Two options from the environment (until they become first-class settings):
``STORYKIT_UI_CONNECT_SRC`` — extra origins the page may call (an ``apiBase`` posted
by an embedding host), and ``STORYKIT_UI_FRAME_ANCESTORS`` — who may frame the page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import mimetypes
import re
import secrets
from pathlib import Path, PurePosixPath

from quart import Blueprint, Response, request
from quart_schema import hide

import storykit
from storykit_quart.access import public, state
from storykit_quart.problems import problem

__all__ = ["UI_DIR", "bp", "csp"]

bp = Blueprint("ui", __name__)

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
STATIC_PREFIX = "/story/static"
DEFAULT_FRAME_ANCESTORS = "* vscode-webview: vscode-file:"
_IMMUTABLE = "public, max-age=31536000, immutable"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
# A CSP source expression: scheme (``vscode-webview:``), origin, or host with wildcards.
_SOURCE = re.compile(r"\A(?:\*|'self'|[a-z][a-z0-9+.-]*:(?://[A-Za-z0-9.*_-]+(?::(?:\d+|\*))?)?)\Z")


@dataclasses.dataclass(frozen=True, slots=True)
class _Assets:
    version: str
    template: str
    etags: dict[str, str]
    """Relative path → strong ETag of every servable file."""
    stamp: tuple[tuple[str, int, int], ...]


_cache: _Assets | None = None


def _stamp() -> tuple[tuple[str, int, int], ...]:
    files = sorted(p for p in UI_DIR.rglob("*") if p.is_file())
    return tuple(
        (p.relative_to(UI_DIR).as_posix(), p.stat().st_mtime_ns, p.stat().st_size) for p in files
    )


def _assets() -> _Assets:
    """The hash of the files, rebuilt when one changes (cheap: a stat per file)."""
    global _cache
    stamp = _stamp()
    if _cache is not None and _cache.stamp == stamp:
        return _cache
    whole = hashlib.sha256()
    etags: dict[str, str] = {}
    for rel, _, _ in stamp:
        if PurePosixPath(rel).suffix not in _TYPES:
            continue
        digest = hashlib.sha256((UI_DIR / rel).read_bytes()).hexdigest()
        etags[rel] = f'"{digest[:32]}"'
        whole.update(f"{rel}\0{digest}\0".encode())
    template = (UI_DIR / "index.html").read_text(encoding="utf-8")
    _cache = _Assets(whole.hexdigest()[:12], template, etags, stamp)
    return _cache


def _sources(raw: str | None, default: str) -> list[str]:
    """Space- or comma-separated CSP sources; anything that is not one is dropped."""
    tokens = re.split(r"[\s,]+", (raw if raw is not None else default).strip())
    return [t for t in tokens if t and _SOURCE.match(t)]


def csp(nonce: str, *, connect: list[str], frame_ancestors: list[str]) -> str:
    """The page's Content-Security-Policy."""
    directives = [
        "default-src 'none'",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        " ".join(["connect-src 'self'", *connect]),
        "img-src 'self' data:",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        " ".join(["frame-ancestors", *(frame_ancestors or ["'none'"])]),
    ]
    return "; ".join(directives)


def _render(assets: _Assets, nonce: str, connect: list[str]) -> str:
    values = {
        "nonce": nonce,
        # Relative, so the page also works behind a path-prefixing proxy (code-server).
        "static": f"./static/{assets.version}",
        "version": storykit.__version__,
        "connect": " ".join(connect),
    }
    return re.sub(
        r"\{\{(\w+)\}\}",
        lambda m: html.escape(values.get(m.group(1), ""), quote=True),
        assets.template,
    )


@bp.get("/story/ui")
@hide
@public
async def page() -> Response:
    """The dashboard (public: every data call it makes needs a key)."""
    settings = state().settings
    connect = _sources(settings.get("STORYKIT_UI_CONNECT_SRC"), "")
    ancestors = _sources(settings.get("STORYKIT_UI_FRAME_ANCESTORS"), DEFAULT_FRAME_ANCESTORS)
    nonce = secrets.token_urlsafe(18)
    response = Response(_render(_assets(), nonce, connect), content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = csp(
        nonce, connect=connect, frame_ancestors=ancestors
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/story/ui/")
@hide
@public
async def page_slash() -> Response:
    query = request.query_string.decode("latin-1")
    return Response(
        "", status=308, headers={"Location": "/story/ui" + (f"?{query}" if query else "")}
    )


@bp.get(f"{STATIC_PREFIX}/<version>/<path:path>")
@hide
@public
async def static_file(version: str, path: str) -> Response:
    """A file of the dashboard. Only known file types inside the folder are served."""
    assets = _assets()
    rel = PurePosixPath(path)
    if (
        rel.is_absolute()
        or any(part in ("", ".", "..") or part.startswith(".") for part in rel.parts)
        or rel.as_posix() not in assets.etags
    ):
        return _not_found()
    etag = assets.etags[rel.as_posix()]
    headers = {
        "ETag": etag,
        # An old version's URL still works, but must not be cached as if it were current.
        "Cache-Control": _IMMUTABLE if version == assets.version else "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("If-None-Match", ""):
        return Response("", status=304, headers=headers)
    kind = _TYPES.get(rel.suffix) or mimetypes.guess_type(rel.name)[0] or "application/octet-stream"
    return Response((UI_DIR / rel).read_bytes(), content_type=kind, headers=headers)


def _not_found() -> Response:
    return problem(404, "Not Found", "no such dashboard file")
