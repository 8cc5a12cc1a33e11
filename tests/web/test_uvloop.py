"""``storykit serve --worker uvloop``: the same app on uvloop's event loop, for real."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from realserver import AGENT_KEY, REVIEWER_KEY, running_server, sample_diff


def test_the_uvloop_worker_serves_the_api_and_the_stream(tmp_path: Path) -> None:
    with running_server(tmp_path, worker="uvloop") as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/health").status_code == 200
            # uvloop's compiled loop is what this process runs on.
            maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
            assert "uvloop/loop." in maps
            with client.stream(
                "GET", "/events", headers={"X-API-Key": REVIEWER_KEY, "Last-Event-ID": "0"}
            ) as stream:
                r = client.post(
                    "/suggestions",
                    headers={"X-API-Key": AGENT_KEY},
                    json={"title": "on uvloop", "diff": sample_diff()},
                )
                assert r.status_code == 201, r.text
                sid = r.json()["id"]
                for line in stream.iter_lines():
                    if line.startswith("data: ") and sid in line:
                        event = json.loads(line.removeprefix("data: "))
                        assert event["type"] == "suggest.submitted"
                        break
