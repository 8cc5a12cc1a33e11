"""One request pipeline for every route, ``/events`` included, on a real Hypercorn process.

The request id (taken or made, echoed), the key check, the refusal's headers, one JSON
log line and the request count: the same for ``GET /events`` as for a Quart route.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from realserver import AGENT_KEY, REVIEWER_KEY, Server, start_server

WORKERS = ["asyncio", "trio"]


@pytest.fixture(params=WORKERS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path, worker=request.param, env={"SSE_HEARTBEAT_INTERVAL": "0.3"})
    yield srv
    srv.stop()


def log_lines(server: Server) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log_file.read_text().splitlines() if line]


def requests_logged(server: Server, request_id: str) -> list[dict[str, Any]]:
    """The request's log line(s), once there is one: the server writes it (and counts the
    request) after the answer has gone out, so the client may read the answer first."""
    end = time.monotonic() + 20
    while True:
        found = [
            e
            for e in log_lines(server)
            if e.get("event") == "request" and e.get("request_id") == request_id
        ]
        if found or time.monotonic() > end:
            return found
        time.sleep(0.05)  # polling for the server's log line, not synchronisation


def counted(server: Server, route: str, method: str, status: int) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    pattern = (
        rf'^storykit_http_requests_total{{method="{method}",route="{re.escape(route)}",'
        rf'status="{status}"}} (\S+)$'
    )
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({}, "missing API key: send it in the X-API-Key header"),
        ({"key": "not-a-key"}, "unknown API key"),
        ({"ticket": "not-a-ticket"}, "the ticket is unknown, used or expired; get a new one"),
    ],
    ids=["no-key", "bad-key", "bad-ticket"],
)
def test_a_refused_stream_is_a_request_like_any_other(
    server: Server, params: dict[str, str], detail: str
) -> None:
    before = counted(server, "/events", "GET", 401)
    r = httpx.get(f"{server.url}/events", params=params, headers={"X-Request-Id": "sse-trace-1"})
    assert r.status_code == 401
    assert r.headers["x-request-id"] == "sse-trace-1"
    assert r.headers["www-authenticate"] == 'APIKey header="X-API-Key"'
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() | {"detail": None} == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": None,
        "request_id": "sse-trace-1",
    }
    assert r.json()["detail"] == detail
    (line,) = requests_logged(server, "sse-trace-1")
    assert line["route"] == "/events" and line["path"] == "/events"
    assert line["status"] == 401 and line["method"] == "GET" and line["agent"] is None
    assert counted(server, "/events", "GET", 401) == before + 1
    assert "not-a-key" not in server.log_file.read_text()  # never the query string


def test_a_stream_gets_a_request_id_a_log_line_and_a_count_when_it_ends(server: Server) -> None:
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{server.url}/events", params={"key": REVIEWER_KEY}) as response,
    ):
        assert response.status_code == 200
        made = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        lines = response.iter_lines()
        assert next(lines) == "retry: 2000"
        assert "RateLimit" not in response.headers  # /events is never rate limited
    # The client has gone: its stream ends (and is logged) at its next send at the latest.
    (line,) = requests_logged(server, made)
    assert line["route"] == "/events" and line["status"] == 200 and line["agent"] == "me"
    assert counted(server, "/events", "GET", 200) == 1
    assert REVIEWER_KEY not in server.log_file.read_text()


def test_a_quart_route_and_a_refusal_carry_the_same_headers(server: Server) -> None:
    ok = httpx.get(f"{server.url}/me", headers={"X-API-Key": AGENT_KEY, "X-Request-Id": "r-1"})
    assert ok.status_code == 200 and ok.json() == {"name": "bot", "role": "agent"}
    assert ok.headers["x-request-id"] == "r-1"
    assert ok.headers["ratelimit-policy"].startswith('"default";q=')
    assert ok.headers["ratelimit"].startswith('"default";r=')
    refused = httpx.post(
        f"{server.url}/suggest/review",
        headers={"X-API-Key": AGENT_KEY, "X-Request-Id": "r-2"},
        json={"id": "x", "action": "approve"},
    )
    assert refused.status_code == 403 and refused.json()["request_id"] == "r-2"
    assert refused.headers["ratelimit"].startswith('"default";r=')
    # A body the server never read: the client is told to open a new connection.
    assert refused.headers["connection"] == "close"
    (line,) = requests_logged(server, "r-2")
    assert line["route"] == "/suggest/review" and line["status"] == 403 and line["agent"] == "bot"
    assert counted(server, "/suggest/review", "POST", 403) == 1


@pytest.mark.anyio
async def test_a_broken_limiter_is_a_problem_500_not_a_bare_error(tmp_path: Path) -> None:
    from storykit.plugins import get_plugin_manager
    from storykit.testing import make_settings
    from storykit_quart.app import create_app

    class Broken:
        policy = '"default";q=1;w=1'

        async def check(self, key: str) -> object:
            raise RuntimeError("the limiter's store fell over")

    settings = make_settings(tmp_path, {"API_TOKENS": "bot:agent=agentkey123"})
    app = create_app(settings, plugin_manager=get_plugin_manager(load_entrypoints=False))
    async with app.test_app() as test_app:
        app.extensions["storykit"].limiter = Broken()
        r = await test_app.test_client().get(
            "/me", headers={"X-API-Key": AGENT_KEY, "X-Request-Id": "r-500"}
        )
        assert r.status_code == 500 and r.content_type == "application/problem+json"
        body = await r.get_json()
        assert body["title"] == "Internal error" and body["request_id"] == "r-500"
        assert "fell over" not in body["detail"]
