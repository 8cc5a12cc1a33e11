"""``/mcp`` on a real ``storykit serve`` process (asyncio and trio workers), through the
SDK's own streamable-HTTP client; reviewers act over the plain HTTP API meanwhile."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_helpers import TOOL_NAMES, error, ok
from realserver import ADMIN_KEY, AGENT_KEY, OTHER_KEY, REVIEWER_KEY, Server, start_server

from storykit.testing import make_diff
from storykit_mcp.tools import TOOLS

DIFF = make_diff("pkg/a.py", "a = 1\n", "a = 2\n")
DIFF2 = make_diff("pkg/a.py", "a = 1\n", "a = 3\n")
JSON_BODY = {"Content-Type": "application/json"}
FAST = {"RATE_LIMIT_RPS": "1000", "RATE_LIMIT_BURST": "1000"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the client's; the servers run both workers


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp(request.param), worker=request.param, env=FAST)
    yield srv
    srv.stop()


@contextlib.asynccontextmanager
async def connect(server: Server, key: str | None = AGENT_KEY, **kw: Any) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"} if kw.pop("bearer", False) else {}
    if key is not None and not headers:
        headers = {"X-API-Key": key}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
        transport = streamable_http_client(f"{server.url}/mcp", http_client=http)
        async with Client(transport, **kw) as client:
            yield client


@contextlib.asynccontextmanager
async def person(server: Server, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}) as http:
        yield http


async def review(
    server: Server, key: str, sid: str, action: str, comment: str = "", **more: Any
) -> None:
    async with person(server, key) as http:
        body = {"id": sid, "action": action, "comment": comment} | more
        r = await http.post("/suggest/review", json=body)
        assert r.status_code == 200, r.text


pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_tool_list_and_schemas(server: Server, mode: str) -> None:
    async with connect(server, mode=mode) as client:
        tools = (await client.list_tools()).tools
        assert client.instructions and "review" in client.instructions
    assert {t.name for t in tools} == TOOL_NAMES
    by_name = {t.name: t for t in TOOLS}
    for tool in tools:
        assert tool.input_schema == by_name[tool.name].input_schema
        assert tool.output_schema == by_name[tool.name].output_schema


async def test_submit_a_reviewer_approves_over_http_and_the_wait_returns_approved(
    server: Server,
) -> None:
    async with connect(server) as client:
        s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF})
        assert s["status"] == "pending" and s["agent"] == "bot"
        results: list[dict[str, Any]] = []

        async def wait() -> None:
            results.append(await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 45}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()  # the call is out, waiting for its answer
            await review(server, REVIEWER_KEY, s["id"], "approve")
    [done] = results
    assert done["status"] == "approved" and done["review"]["reviewer"] == "me"


async def test_a_revise_request_is_read_revised_and_earlier_approvals_stop_counting(
    server: Server,
) -> None:
    async with connect(server, bearer=True) as client:
        s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF})
        await review(server, OTHER_KEY, s["id"], "approve")
        note = {"file": "pkg/a.py", "line": 1, "side": "new", "body": "3 here"}
        await review(server, REVIEWER_KEY, s["id"], "revise", "use 3, not 2", comments=[note])
        waited = await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 45})
        assert waited["status"] == "revision_requested"
        assert waited["review"]["comments"][0]["body"] == "3 here"
        read = await ok(client, "get_suggestion", {"id": s["id"]})
        assert read["reviews"][-1]["comment"] == "use 3, not 2"
        [line] = read["reviews"][-1]["comments"]  # exactly which line
        assert (line["file"], line["line"], line["side"]) == ("pkg/a.py", 1, "new")
        revised = await ok(client, "revise_suggestion", {"id": s["id"], "diff": DIFF2, "note": "3"})
        assert revised["revision"] == 2 and revised["status"] == "pending"
        assert revised["reviews"][-1]["comments"][0]["outdated"] is True  # that line changed
        history = await ok(client, "list_revisions", {"id": s["id"], "since": 1})
        assert [r["number"] for r in history["items"]] == [1, 2]
        assert "-a = 2\n+a = 3\n" in history["changes"]
        again = await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 0})
        assert again["status"] == "pending" and again["retry_after_s"] >= 1
    async with person(server, REVIEWER_KEY) as http:
        stored = (await http.get(f"/suggestions/{s['id']}")).json()
    assert stored["status"] == "pending" and stored["diff"] == DIFF2
    approvals = [
        r
        for r in stored["reviews"]
        if r["action"] == "approve" and r["diff_hash"] == stored["diff_hash"]
    ]
    assert approvals == []


async def test_no_tool_lets_any_key_decide(server: Server) -> None:
    for key in (AGENT_KEY, ADMIN_KEY):
        async with connect(server, key) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOL_NAMES
            s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF})
            for name in ("review", "approve_suggestion", "set_policies"):
                assert "there is no tool" in await error(client, name, {"id": s["id"]})
            await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 0})
            await ok(client, "revise_suggestion", {"id": s["id"], "diff": DIFF2})
            mine = await ok(client, "list_my_suggestions", {})
            assert s["id"] in [i["id"] for i in mine["items"]]
        async with person(server, REVIEWER_KEY) as http:
            stored = (await http.get(f"/suggestions/{s['id']}")).json()
        assert stored["status"] == "pending" and stored["reviews"] == []


async def test_a_wrong_or_missing_key_is_refused(server: Server) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=server.url) as http:
        for headers in (
            {},
            {"X-API-Key": "not-a-key-at-all"},
            {"Authorization": "Bearer nope-nope"},
        ):
            r = await http.post("/mcp", json=ping, headers=accept | headers)
            assert r.status_code == 401, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["detail"] in (
                "missing API key: send it in the X-API-Key header",
                "unknown API key",
            )
    # The SDK's client: it fails to connect, having been answered 401.
    for key in ({}, {"X-API-Key": "not-a-key-at-all"}):
        statuses: list[int] = []

        async def record(response: httpx2.Response) -> None:
            statuses.append(response.status_code)  # noqa: B023 - used at once

        hooks = {"response": [record]}
        async with httpx2.AsyncClient(headers=key, event_hooks=hooks) as sdk:
            with pytest.raises(BaseException, match="error") as raised:
                async with Client(streamable_http_client(f"{server.url}/mcp", http_client=sdk)):
                    pass
        assert isinstance(raised.value, Exception)
        assert statuses and set(statuses) == {401}


async def test_bad_arguments_give_tool_errors_and_the_server_carries_on(server: Server) -> None:
    async with connect(server) as client:
        assert "diff: Field required" in await error(client, "submit_suggestion", {"title": "t"})
        assert "unknown argument" in await error(client, "get_suggestion", {"id": "x", "y": 1})
        # The same sentence as the HTTP API's problem+json ``detail``.
        for sid in ("nope", "sug_01J0000000000000000000000A"):
            async with person(server, AGENT_KEY) as http:
                r = await http.get(f"/suggestions/{sid}")
            assert r.status_code in (404, 422)
            assert await error(client, "get_suggestion", {"id": sid}) == r.json()["detail"]
        s = await ok(client, "submit_suggestion", {"title": "fine", "diff": DIFF})
    assert s["status"] == "pending"
    async with person(server, AGENT_KEY) as http:
        assert (await http.get("/health")).status_code == 200


async def test_other_methods_and_paths_are_answered_not_crashed(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": AGENT_KEY}) as http:
        for method in ("GET", "DELETE"):  # stateless: no stream to open, no session to end
            r = await http.request(method, "/mcp", headers={"Accept": "text/event-stream"})
            assert r.status_code == 405 and r.headers["allow"] == "POST", r.text
            assert r.headers["content-type"] == "application/problem+json"
        accept = {"Accept": "application/json, text/event-stream"}
        r = await http.post("/mcp", content=b"{not json", headers=accept | JSON_BODY)
        assert 400 <= r.status_code < 500, r.text
        r = await http.post("/mcp/", json={})
        assert r.status_code == 404
        r = await http.get("/health")
        assert r.status_code == 200
