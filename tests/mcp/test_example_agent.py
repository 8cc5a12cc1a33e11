"""The example agent of docs/agents.md, run as-is against a real server: it proposes, a
reviewer asks for a revision over HTTP, it revises as asked, the reviewer approves."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse
from realserver import AGENT_KEY, REVIEWER_KEY, running_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "mcp_agent.py"
DEADLINE = 60.0


class Lines:
    """The process's stdout lines, read on a thread, each taken with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next(self) -> str:
        line = self._lines.get(timeout=DEADLINE)
        assert line is not None, "the agent closed its output"
        return line


def test_the_example_agent_runs_against_a_real_server(tmp_path: Path) -> None:
    fast = {"RATE_LIMIT_RPS": "1000", "RATE_LIMIT_BURST": "1000"}
    with running_server(tmp_path, env=fast) as server:
        env = os.environ | {"STORYKIT_URL": server.url, "STORYKIT_API_KEY": AGENT_KEY}
        agent = subprocess.Popen(
            [sys.executable, str(EXAMPLE)], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            lines = Lines(agent)
            assert lines.next() == "policy says allow"
            submitted = lines.next()
            match = re.fullmatch(r"submitted (sug_\w+) pending", submitted)
            assert match, submitted
            sid = match.group(1)
            reviewer = httpx.Client(base_url=server.url, headers={"X-API-Key": REVIEWER_KEY})
            with reviewer:
                body = {"id": sid, "action": "revise", "comment": "make it 60"}
                assert reviewer.post("/suggest/review", json=body).status_code == 200
                assert lines.next() == "asked to revise: make it 60"
                # The agent revises, then waits again; approve once the revision is in.
                revised = _wait_for_revision(reviewer, sid)
                assert "+timeout = 60" in revised["diff"]
                assert revised["rationale"] == "Done: make it 60"
                r = reviewer.post("/suggest/review", json={"id": sid, "action": "approve"})
                assert r.status_code == 200
            assert lines.next() == "decided approved"
            assert agent.wait(timeout=DEADLINE) == 0
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
            assert agent.stdout is not None
            agent.stdout.close()


def _wait_for_revision(reviewer: httpx.Client, sid: str) -> dict[str, Any]:
    """Read the event stream from the start until the suggestion's ``suggest.revised``."""
    headers = {"Last-Event-ID": "0"}
    with connect_sse(reviewer, "GET", "/events", headers=headers, timeout=DEADLINE) as source:
        for sse in source.iter_sse():
            event = json.loads(sse.data) if sse.data else {}
            if event.get("type") == "suggest.revised" and event["data"]["id"] == sid:
                return reviewer.get(f"/suggestions/{sid}").json()  # type: ignore[no-any-return]
    raise AssertionError("the stream ended before the agent revised")


def test_the_docs_show_exactly_the_example_agent() -> None:
    docs = (ROOT / "docs" / "agents.md").read_text(encoding="utf-8")
    marker = "<!-- the block below is docs/examples/mcp_agent.py; a test keeps them equal -->\n"
    block = docs.split(marker, 1)[1].split("```python\n", 1)[1].split("\n```", 1)[0] + "\n"
    assert block == EXAMPLE.read_text(encoding="utf-8")
