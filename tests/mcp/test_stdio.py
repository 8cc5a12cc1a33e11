"""``storykit mcp`` over stdio, as an agent starts it: a subprocess driven by the SDK's own
client. Remote mode talks to a real server (``--url``/``STORYKIT_URL``); local mode runs the
core on the local data directory as an agent named after the OS user."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp_helpers import TOOL_NAMES, error, ok
from realserver import AGENT_KEY, REVIEWER_KEY, Server, start_server

from storykit.testing import make_diff
from storykit_cli.user import local_user

DIFF = make_diff("pkg/a.py", "a = 1\n", "a = 2\n")
DIFF2 = make_diff("pkg/a.py", "a = 1\n", "a = 3\n")
CLEARED = ("STORYKIT_URL", "STORYKIT_API_KEY", "STORYKIT_DATA_DIR", "API_TOKENS", "DB_PATH")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    fast = {"RATE_LIMIT_RPS": "1000", "RATE_LIMIT_BURST": "1000"}
    srv = start_server(tmp_path_factory.mktemp("stdio"), env=fast)
    yield srv
    srv.stop()


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return env | {"STORYKIT_LOAD_PLUGINS": ""} | extra


def env_key(env: dict[str, str]) -> dict[str, str]:
    return {"X-API-Key": env["STORYKIT_API_KEY"]}


@contextlib.asynccontextmanager
async def agent(env: dict[str, str], *args: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "storykit_cli", *args, "mcp"], env=env
    )
    async with Client(params) as client:
        yield client


pytestmark = pytest.mark.anyio


async def test_remote_submit_approve_over_http_then_the_wait_returns_approved(
    server: Server,
) -> None:
    env = environment(STORYKIT_URL=server.url, STORYKIT_API_KEY=AGENT_KEY)
    async with agent(env) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOL_NAMES
        s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF})
        assert s["agent"] == "bot" and s["status"] == "pending"
        results: list[dict[str, Any]] = []

        async def wait() -> None:
            results.append(await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 45}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            async with httpx.AsyncClient(
                base_url=server.url, headers={"X-API-Key": REVIEWER_KEY}
            ) as http:
                r = await http.post("/suggest/review", json={"id": s["id"], "action": "revise",
                                                             "comment": "use 3"})  # fmt: skip
                assert r.status_code == 200, r.text
        assert results[0]["status"] == "revision_requested"
        assert results[0]["review"]["comment"] == "use 3"
        revised = await ok(client, "revise_suggestion", {"id": s["id"], "diff": DIFF2, "note": "3"})
        assert revised["revision"] == 2 and revised["status"] == "pending"
        pending = await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 0})
        assert pending["status"] == "pending"
        mine = await ok(client, "list_my_suggestions", {"status": "pending"})
        assert s["id"] in [i["id"] for i in mine["items"]]
        decision = await ok(client, "check_diff", {"diff": DIFF})
        assert decision["outcome"] == "allow"
        # Errors are the server's problem+json detail, word for word.
        async with httpx.AsyncClient(base_url=server.url, headers=env_key(env)) as http:
            refused = (await http.get("/suggestions/nope")).json()["detail"]
        assert await error(client, "get_suggestion", {"id": "nope"}) == refused


async def test_remote_with_a_wrong_key_answers_tool_errors(server: Server) -> None:
    env = environment(STORYKIT_URL=server.url, STORYKIT_API_KEY="not-a-real-key")
    async with agent(env) as client:
        assert await error(client, "list_my_suggestions", {}) == "unknown API key"
        assert await error(client, "submit_suggestion", {"title": "t", "diff": DIFF}) == (
            "unknown API key"
        )


def test_remote_without_a_key_stops_with_one_line(server: Server) -> None:
    env = environment(STORYKIT_URL=server.url)
    done = subprocess.run(
        [sys.executable, "-m", "storykit_cli", "mcp"],
        env=env,
        input=b"",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout == b""  # stdout is the protocol's: nothing else ever goes there
    [line] = done.stderr.decode().strip().splitlines()[:1]
    assert line.startswith("error: ") and "STORYKIT_API_KEY" in done.stderr.decode()


async def test_local_mode_is_an_agent_named_after_the_os_user(tmp_path: Path) -> None:
    data = tmp_path / "data"
    repo = tmp_path / "repo"
    repo.mkdir()
    await anyio.run_process(["git", "init", "-q", str(repo)])
    env = environment(STORYKIT_DATA_DIR=str(data), REPO_PATH=str(repo))
    async with agent(env) as client:
        s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF})
        assert s["agent"] == f"mcp:{local_user()}"
        results: list[dict[str, Any]] = []

        async def wait() -> None:
            results.append(await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 45}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            # The person at the keyboard approves with the local CLI (another process on
            # the same data directory): their agent's proposal is not their own.
            review = ["--data-dir", str(data), "suggest", "review", s["id"], "--approve"]
            command = [sys.executable, "-m", "storykit_cli", *review]
            approved = await anyio.run_process(command, env=env, check=False)
            assert approved.returncode == 0, approved.stderr.decode()
        [done] = results
        assert done["status"] == "approved" and done["review"]["reviewer"] == local_user()
        mine = await ok(client, "list_my_suggestions", {})
        assert [i["id"] for i in mine["items"]] == [s["id"]]


async def test_remote_submit_sends_the_idempotency_key(server: Server) -> None:
    env = environment(STORYKIT_URL=server.url, STORYKIT_API_KEY=AGENT_KEY)
    args = {"title": "once", "diff": DIFF, "idempotency_key": "stdio-retry-1"}
    async with agent(env) as client:
        first = await ok(client, "submit_suggestion", args)
        again = await ok(client, "submit_suggestion", args)
    assert again["id"] == first["id"]
