"""The web host and ``/mcp``: optional (a plain install without the SDK serves the rest),
and refused like every other route (401, 429) before the SDK sees the request."""

from __future__ import annotations

import json
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from realserver import AGENT_KEY, KEYS

from storykit.auth import KeyRing, parse_api_tokens
from storykit.metrics import Metrics
from storykit.ratelimit import RateLimiter
from storykit.testing import make_settings
from storykit_quart import create_app
from storykit_quart.state import HostState

pytestmark = pytest.mark.anyio


async def test_create_app_serves_everything_else_when_the_mcp_sdk_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "storykit_mcp" or m.startswith("storykit_mcp.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mcp", None)  # `import mcp` now fails
    app = create_app(make_settings(tmp_path, {"API_TOKENS": KEYS}))
    assert app.extensions["storykit_mcp"] is None
    assert "storykit_mcp.http" not in sys.modules
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert (await client.get("/health")).status_code == 200
        r = await client.get("/suggestions", headers={"X-API-Key": AGENT_KEY})
        assert r.status_code == 200
        r = await client.post("/mcp", json={}, headers={"X-API-Key": AGENT_KEY})
        assert r.status_code == 404 and r.mimetype == "application/problem+json"


def test_the_mount_is_there_when_the_sdk_is(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, {"API_TOKENS": KEYS}))
    assert app.extensions["storykit_mcp"] is not None


class Recorder:
    def __init__(self) -> None:
        self.messages: list[MutableMapping[str, Any]] = []

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    @property
    def body(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.messages[1:]))


async def receive() -> MutableMapping[str, Any]:
    return {"type": "http.request", "body": b"{}", "more_body": False}


async def test_refusals_are_problems_with_their_headers(tmp_path: Path) -> None:
    from storykit_mcp.http import MCPMount

    settings = make_settings(tmp_path)
    host = HostState(
        settings=settings,
        keys=KeyRing(parse_api_tokens(KEYS)),
        limiter=RateLimiter(1, 2, clock=lambda: 0.0),  # no time passes: the third is over
        metrics=Metrics(),
    )
    from werkzeug.routing import Map

    from storykit_quart.app import MCP_ROUTE
    from storykit_quart.pipeline import Pipeline

    mount = MCPMount(host)
    methods = ("POST", "GET", "DELETE")
    # The mount behind the web host's request pipeline, as create_app puts it.
    app = Pipeline(
        mount,
        host,
        url_map=Map(),
        role_of=lambda endpoint: None,
        extra=[(m, MCP_ROUTE) for m in methods],
    )

    async def call(headers: list[tuple[bytes, bytes]], method: str = "POST") -> Recorder:
        scope = {"type": "http", "path": "/mcp", "method": method, "headers": headers}
        send = Recorder()
        await app(scope, receive, send)
        return send

    missing = await call([])
    assert missing.status == 401 and missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"].startswith("APIKey")
    assert missing.body["detail"] == "missing API key: send it in the X-API-Key header"
    wrong = await call([(b"authorization", b"Bearer not-a-real-key")])
    assert wrong.status == 401 and wrong.body["detail"] == "unknown API key"
    first = await call([(b"authorization", b"Bearer " + AGENT_KEY.encode())], method="GET")
    assert first.status == 405 and first.headers["allow"] == "POST"
    big = str(settings.max_body_bytes + 1).encode()
    too_large = await call([(b"x-api-key", AGENT_KEY.encode()), (b"content-length", big)])
    assert too_large.status == 413 and "MAX_BODY_BYTES" in too_large.body["detail"]
    limited = await call([(b"x-api-key", AGENT_KEY.encode())])
    assert limited.status == 429 and int(limited.headers["retry-after"]) >= 1
    assert "requests/s from 'bot'" in limited.body["detail"]
    assert all("x-request-id" in r.headers for r in (missing, wrong, first, too_large, limited))
    counted = host.metrics.http_requests.labels(route="/mcp", method="POST", status="401")
    assert counted._value.get() == 2
