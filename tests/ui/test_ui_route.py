"""The dashboard's HTTP surface: the page's security headers and the static files.

These need the server but no browser.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from storykit_quart.routes import ui

UI_DIR = Path(ui.__file__).resolve().parent.parent / "ui"


def _page(server) -> httpx.Response:
    response = httpx.get(f"{server.url}/story/ui")
    assert response.status_code == 200
    return response


def test_page_has_a_fresh_nonce_csp_and_no_key(server) -> None:
    first, second = _page(server), _page(server)
    csp = first.headers["content-security-policy"]
    found = re.search(r"'nonce-([^']+)'", csp)
    assert found, csp
    nonce = found.group(1)
    assert nonce not in second.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == f"'self' 'nonce-{nonce}'"
    assert directives["style-src"] == f"'self' 'nonce-{nonce}'"
    assert directives["connect-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"
    assert "frame-ancestors" in directives
    assert "x-frame-options" not in first.headers
    assert first.headers["cache-control"] == "no-store"
    # Every script and stylesheet carries the nonce; nothing is inline.
    html = first.text
    tags = re.findall(r"<(script|link rel=\"stylesheet\")[^>]*>", html)
    assert len(tags) == 2
    assert html.count(f'nonce="{nonce}"') == 2
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    assert re.search(r"\son[a-z]+=", html) is None
    assert re.search(r"\sstyle=", html) is None
    assert "X-API-Key" not in html


def test_trailing_slash_keeps_the_query(server) -> None:
    response = httpx.get(f"{server.url}/story/ui/?origins=vscode-webview://*")
    assert response.status_code == 308
    assert response.headers["location"] == "/story/ui?origins=vscode-webview://*"


def test_page_needs_no_key_but_its_data_does(server) -> None:
    assert httpx.get(f"{server.url}/story/ui").status_code == 200
    assert httpx.get(f"{server.url}/suggestions").status_code == 401


def test_static_files_are_versioned_and_cached(server) -> None:
    html = _page(server).text
    found = re.search(r'data-static="([^"]+)"', html)
    assert found, html
    relative = found.group(1)
    assert relative.startswith("./static/")  # relative: works behind a prefixing proxy
    prefix = urljoin(f"{server.url}/story/ui", relative)
    response = httpx.get(f"{prefix}/js/main.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    etag = response.headers["etag"]
    again = httpx.get(f"{prefix}/js/main.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    # An out-of-date version still answers, but is not cached as if it were current.
    old = httpx.get(f"{server.url}/story/static/0123456789ab/app.css")
    assert old.status_code == 200
    assert old.headers["cache-control"] == "no-cache"
    assert old.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "../routes/ui.py",
        "..%2F..%2Fapp.py",
        "js/../../app.py",
        ".hidden",
        "js/nope.js",
        "index.html",  # the template is served only as the page
        "%2Fetc%2Fpasswd",
    ],
)
def test_static_refuses_anything_else(server, path: str) -> None:
    # (Werkzeug merges the slashes of "%2F…" with a redirect first; the target is a 404 too.)
    response = httpx.get(f"{server.url}/story/static/v/{path}", follow_redirects=True)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_static_sources_are_csp_clean() -> None:
    """No code path may need 'unsafe-inline' or 'unsafe-eval', or parse server text as HTML."""
    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"setAttribute\(\s*[\"']style|\.style\.|setAttribute\(\s*[\"']on"
    )
    ours = [p for p in UI_DIR.rglob("*.js") if "vendor" not in p.relative_to(UI_DIR).parts]
    offenders = [
        f"{path.name}:{n}"
        for path in ours
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if forbidden.search(line)
    ]
    assert offenders == []
    # Vendored highlight.js: nothing that needs 'unsafe-eval'; its only innerHTML is in
    # highlightElement/highlightAll, which storykit never calls (it reads hljs.highlight's
    # output as data, js/syntax.js).
    vendored = (UI_DIR / "vendor" / "highlightjs" / "highlight.min.js").read_text()
    assert not re.search(r"\beval\(|new Function|document\.write", vendored)
    calls = re.compile(r"highlightElement|highlightAll|highlightBlock|innerHTML")
    assert [p.name for p in ours if calls.search(p.read_text())] == []


def test_csp_options_accept_only_source_expressions() -> None:
    assert ui._sources("https://a.example, vscode-webview: *", "") == [
        "https://a.example",
        "vscode-webview:",
        "*",
    ]
    # Anything that could break out of the header or the directive is dropped.
    assert ui._sources("https://a.example;script-src * 'unsafe-inline'\r\nX: y", "") == ["*"]
    assert ui._sources(None, ui.DEFAULT_FRAME_ANCESTORS) == ["*", "vscode-webview:", "vscode-file:"]
    policy = ui.csp("n0nce", connect=["https://api.example"], frame_ancestors=[])
    assert "connect-src 'self' https://api.example" in policy
    assert "frame-ancestors 'none'" in policy
