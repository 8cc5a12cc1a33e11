"""Embedding: the dashboard in an iframe of another origin, the key sent by postMessage.

The parent page stands in for the VS Code extension's webview. It is served by a
plain http.server on another port (and host name), so it is a different origin.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect
from ui_harness import KEYS

pytestmark = pytest.mark.browser

PARENT = """<!doctype html>
<html><head><meta charset="utf-8"><title>host</title></head>
<body>
<iframe id="dash" title="storykit" width="1100" height="700"></iframe>
<script>
  const params = new URLSearchParams(location.hash.slice(1));
  const frame = document.getElementById("dash");
  window.received = [];
  window.send = (message) => frame.contentWindow.postMessage(message, params.get("target") || "*");
  window.addEventListener("message", (event) => {
    if (event.source !== frame.contentWindow) return;
    window.received.push({ origin: event.origin, data: event.data });
    if (event.data && event.data.type === "storykit.ready" && params.get("key")) {
      const message = { type: "storykit.key", key: params.get("key") };
      if (params.get("theme")) message.theme = params.get("theme");
      window.send(message);
    }
  });
  frame.src = params.get("src");
</script>
</body></html>
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def parent_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("parent")
    (folder / "parent.html").write_text(PARENT, encoding="utf-8")
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def parent_url(
    parent_origin: str,
    server,
    *,
    key: str | None = None,
    origins: str | None = None,
    theme: str | None = None,
    target: str | None = None,
) -> str:
    src = f"{server.url}/story/ui"
    if origins is not None:
        src += f"?origins={quote(origins, safe='')}"
    parts = [f"src={quote(src, safe='')}"]
    if key:
        parts.append(f"key={quote(key, safe='')}")
    if theme:
        parts.append(f"theme={theme}")
    if target:
        parts.append(f"target={quote(target, safe='')}")
    return f"{parent_origin}/parent.html#" + "&".join(parts)


def received(page: Page) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = page.evaluate("window.received")
    return messages


def test_key_by_post_message_connects_the_frame(open_page, server, parent_origin) -> None:
    page = open_page(
        url=parent_url(
            parent_origin, server, key=KEYS["reviewer"], origins=parent_origin, target=server.url
        ),
        key=None,
    )
    frame = page.frame_locator("#dash")
    expect(frame.locator("#conn")).to_have_attribute("data-state", "live")
    expect(frame.get_by_role("heading", name="Suggestions")).to_be_visible()
    # The frame tells its parent how it is doing, and where it came from.
    page.wait_for_function(
        "window.received.some(m => m.data.type === 'storykit.state' && m.data.state === 'live')"
    )
    messages = received(page)
    assert messages[0]["data"]["type"] == "storykit.ready"
    assert {m["origin"] for m in messages} == {server.url}
    # The key stays in memory: nothing is written to the frame's storage (when it has any).
    dash = next(f for f in page.frames if f.url.startswith(server.url))
    stored = "() => { try { return localStorage.getItem('storykit.key') } catch { return null } }"
    assert dash.evaluate(stored) is None
    expect(frame.get_by_role("button", name="Change key")).to_be_hidden()


def test_a_parent_outside_the_allowlist_is_ignored(open_page, server, parent_origin) -> None:
    page = open_page(
        url=parent_url(
            parent_origin,
            server,
            key=KEYS["reviewer"],
            origins="https://editor.example,vscode-webview://*",
        ),
        key=None,
    )
    frame = page.frame_locator("#dash")
    expect(frame.get_by_text("Waiting for the key from the editor…")).to_be_visible()
    page.wait_for_function("window.received.some(m => m.data.type === 'storykit.ready')")
    expect(frame.locator("#conn-text")).to_have_text("Waiting for a key")
    assert [m["data"]["type"] for m in received(page)] == ["storykit.ready"]


def test_a_framed_page_never_uses_the_stored_key(open_page, server, parent_origin) -> None:
    top = open_page()  # stores the reviewer key in the dashboard origin's localStorage
    expect(top.locator("#conn")).to_have_attribute("data-state", "live")
    page = top.context.new_page()
    page.goto(parent_url(parent_origin, server))
    frame = page.frame_locator("#dash")
    expect(frame.get_by_text("Waiting for the key from the editor…")).to_be_visible()
    expect(frame.locator("#conn")).to_have_attribute("data-state", "offline")
    page.close()


def test_a_rejected_key_is_reported_and_a_new_one_accepted(
    open_page, server, parent_origin
) -> None:
    page = open_page(
        url=parent_url(parent_origin, server, key="wrong-key-123", theme="dark"), key=None
    )
    page.wait_for_function("window.received.some(m => m.data.type === 'storykit.auth-failed')")
    frame = page.frame_locator("#dash")
    expect(frame.get_by_role("alert").filter(has_text="did not accept")).to_be_visible()
    expect(frame.locator("html")).to_have_attribute("data-theme", "dark")
    page.evaluate(f"window.send({{type: 'storykit.key', key: '{KEYS['reviewer']}'}})")
    expect(frame.locator("#conn")).to_have_attribute("data-state", "live")
    page.evaluate("window.send({type: 'storykit.clear'})")
    expect(frame.get_by_text("Waiting for the key from the editor…")).to_be_visible()
