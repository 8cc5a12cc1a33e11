"""The tools on the core in this process, through the SDK's in-process client (asyncio, trio)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_helpers import TOOL_NAMES, error, ok

from storykit.auth import Principal, Role
from storykit.backends import PolicySubject
from storykit.errors import StorykitError
from storykit.hookspecs import hookimpl
from storykit.models import Finding, Outcome
from storykit.services import Storykit
from storykit.testing import AGENT, OTHER_AGENT, OTHER_REVIEWER, REVIEWER, make_diff, open_core
from storykit_mcp.local import CoreGateway
from storykit_mcp.server import build_server

pytestmark = pytest.mark.anyio
DIFF = make_diff("pkg/a.py", "a = 1\n", "a = 2\n")
DIFF2 = make_diff("pkg/a.py", "a = 1\n", "a = 3\n")
BAD = make_diff("pkg/a.py", "a = 1\n", "a = 'FORBIDDEN'\n")


class DenyWord:
    name = "deny-word"

    def default_config(self) -> Mapping[str, Any]:
        return {}

    def validate_config(self, config: Mapping[str, Any]) -> None:
        pass

    async def check(self, subject: PolicySubject, config: Mapping[str, Any]) -> Sequence[Finding]:
        if "FORBIDDEN" not in subject.diff:
            return []
        return [
            Finding(rule="word", message="FORBIDDEN is forbidden", severity=Outcome.DENY,
                    policy=self.name, file="pkg/a.py", line=1)
        ]  # fmt: skip


class Plugin:
    @hookimpl
    def storykit_register_policies(self, register: Any) -> None:
        register(DenyWord())


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Storykit]:
    async with open_core(tmp_path, plugins={"deny-word": Plugin()}) as core:
        yield core


@contextlib.asynccontextmanager
async def agent(
    core: Storykit, actor: Principal = AGENT, stops: set[anyio.CancelScope] | None = None
) -> AsyncIterator[Client]:
    server = build_server(lambda _request: CoreGateway(core, actor, stops=stops))
    async with Client(server) as client:
        yield client


async def test_the_tools_are_exactly_those_of_the_spec_with_schemas(core: Storykit) -> None:
    async with agent(core) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == TOOL_NAMES
    for tool in tools.values():
        assert tool.description
        assert tool.input_schema["type"] == "object"
        assert tool.input_schema["additionalProperties"] is False
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
    submit = tools["submit_suggestion"].input_schema
    assert set(submit["properties"]) == {
        "title",
        "diff",
        "rationale",
        "base_ref",
        "idempotency_key",
    }
    assert set(submit["required"]) == {"title", "diff"}
    wait = tools["wait_for_review"].input_schema
    assert wait["properties"]["timeout_s"]["maximum"] == 45
    assert set(wait["required"]) == {"id"}
    assert set(tools["revise_suggestion"].input_schema["properties"]) == {"id", "diff", "note"}
    assert set(tools["get_suggestion"].input_schema["required"]) == {"id"}
    assert set(tools["list_my_suggestions"].input_schema["properties"]) >= {"status"}
    assert set(tools["check_diff"].input_schema["required"]) == {"diff"}
    read_only = {n for n, t in tools.items() if t.annotations and t.annotations.read_only_hint}
    assert read_only == {
        "check_diff",
        "get_suggestion",
        "wait_for_review",
        "list_my_suggestions",
        "list_revisions",
    }


async def test_check_diff_screens_and_stores_nothing(core: Storykit) -> None:
    async with agent(core) as client:
        fine = await ok(client, "check_diff", {"diff": DIFF})
        bad = await ok(client, "check_diff", {"diff": BAD, "title": "t"})
    assert fine["outcome"] == "allow" and fine["findings"] == []
    assert bad["outcome"] == "deny" and bad["findings"][0]["rule"] == "word"
    assert bad["risk"] in ("low", "medium", "high", "unknown")
    assert await core.list_suggestions() == []


async def test_check_diff_takes_the_base_a_submission_would_name(core: Storykit) -> None:
    async with agent(core) as client:
        fine = await ok(client, "check_diff", {"diff": DIFF, "base_ref": "HEAD"})
        refused = await error(client, "check_diff", {"diff": DIFF, "base_ref": "a..b"})
    assert fine["outcome"] == "allow"
    assert "base_ref 'a..b' is not a valid git ref" in refused


async def parked(waits: set[anyio.CancelScope]) -> None:
    """Until a wait has read the suggestion and parked on the event bus."""
    while not waits:  # blocked on the database read (a thread) comes first
        await anyio.wait_all_tasks_blocked()


async def test_submit_then_a_person_approves_and_the_wait_wakes(core: Storykit) -> None:
    waits: set[anyio.CancelScope] = set()
    async with agent(core, stops=waits) as client:
        s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF, "rationale": "r"})
        assert s["status"] == "pending" and s["agent"] == AGENT.name and s["rationale"] == "r"
        results: list[dict[str, Any]] = []

        async def wait() -> None:
            results.append(await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 45}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await parked(waits)
            assert results == []
            await core.review(REVIEWER, s["id"], action="approve")
    [done] = results
    assert done["status"] == "approved" and done["decided"] is True
    assert done["review"]["reviewer"] == REVIEWER.name
    assert done["retry_after_s"] is None
    assert done["suggestion"]["status"] == "approved"


async def test_a_revision_request_is_read_revised_and_earlier_approvals_stop_counting(
    core: Storykit,
) -> None:
    async with agent(core) as client:
        s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF})
        await core.review(OTHER_REVIEWER, s["id"], action="approve")
        await core.review(REVIEWER, s["id"], action="revise", comment="use 3, not 2")
        asked = await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 0})
        assert asked["status"] == "revision_requested"
        assert asked["review"]["comment"] == "use 3, not 2"
        read = await ok(client, "get_suggestion", {"id": s["id"]})
        assert read["status"] == "revision_requested"
        assert [r["comment"] for r in read["reviews"]] == ["", "use 3, not 2"]
        revised = await ok(
            client, "revise_suggestion", {"id": s["id"], "diff": DIFF2, "note": "now 3"}
        )
        assert revised["id"] == s["id"] and revised["revision"] == 2
        assert revised["status"] == "pending" and revised["rationale"] == "now 3"
        again = await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 0})
    assert again["status"] == "pending" and again["decided"] is False
    assert again["retry_after_s"] >= 1
    assert (await core.get_suggestion(s["id"])).approvals == ()


async def test_a_wait_that_times_out_is_pending_with_when_to_ask_again(core: Storykit) -> None:
    async with agent(core) as client:
        s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF})
        result = await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 0.01})
        longer = await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 0})
    assert result["status"] == "pending" and result["decided"] is False
    assert result["review"] is None and result["retry_after_s"] >= 1
    assert longer["status"] == "pending"


async def test_a_blocked_suggestion_returns_from_the_wait_at_once(core: Storykit) -> None:
    async with agent(core) as client:
        s = await ok(client, "submit_suggestion", {"title": "t", "diff": BAD})
        assert s["status"] == "blocked" and s["findings"][0]["message"] == "FORBIDDEN is forbidden"
        result = await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 45})
    assert result["status"] == "blocked" and result["decided"] is False


async def test_list_my_suggestions_lists_only_the_callers(core: Storykit) -> None:
    await core.submit(OTHER_AGENT, title="theirs", diff=DIFF)
    async with agent(core) as client:
        mine = await ok(client, "submit_suggestion", {"title": "mine", "diff": DIFF})
        blocked = await ok(client, "submit_suggestion", {"title": "bad", "diff": BAD})
        everything = await ok(client, "list_my_suggestions", {})
        only_blocked = await ok(client, "list_my_suggestions", {"status": "blocked"})
        page = await ok(client, "list_my_suggestions", {"limit": 1})
    assert [s["id"] for s in everything["items"]] == [blocked["id"], mine["id"]]
    assert everything["next_after"] is None
    assert [s["id"] for s in only_blocked["items"]] == [blocked["id"]]
    assert only_blocked["items"][0]["findings"] == 1
    assert page["next_after"] == blocked["id"]


async def test_no_tool_decides_whatever_the_key(core: Storykit) -> None:
    admin = Principal(name="root", role=Role.ADMIN)
    for actor in (AGENT, admin):
        async with agent(core, actor) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == TOOL_NAMES
            s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF})
            for name in ("review", "approve", "approve_suggestion", "reject_suggestion"):
                assert "there is no tool" in await error(client, name, {"id": s["id"]})
            await ok(client, "get_suggestion", {"id": s["id"]})
            await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 0})
            await ok(client, "check_diff", {"diff": DIFF})
            await ok(client, "list_my_suggestions", {})
            await ok(client, "revise_suggestion", {"id": s["id"], "diff": DIFF2})
        assert (await core.get_suggestion(s["id"])).status == "pending"
        assert (await core.get_suggestion(s["id"])).reviews == ()


async def test_only_the_proposer_can_revise(core: Storykit) -> None:
    theirs = await core.submit(OTHER_AGENT, title="theirs", diff=DIFF)
    async with agent(core) as client:
        text = await error(client, "revise_suggestion", {"id": theirs.id, "diff": DIFF2})
    assert text == "only the proposer ('other-bot') can revise this suggestion"


async def test_bad_arguments_are_tool_errors_and_the_server_carries_on(core: Storykit) -> None:
    async with agent(core) as client:
        assert "diff: Field required" in await error(client, "submit_suggestion", {"title": "t"})
        assert "title: Input should be a valid string" in await error(
            client, "submit_suggestion", {"title": 3, "diff": DIFF}
        )
        assert "colour: unknown argument" in await error(
            client, "check_diff", {"diff": DIFF, "colour": "red"}
        )
        assert "timeout_s" in await error(
            client, "wait_for_review", {"id": "sug_x", "timeout_s": "soon"}
        )
        assert "status" in await error(client, "list_my_suggestions", {"status": "maybe"})
        assert "limit" in await error(client, "list_my_suggestions", {"limit": 0})
        # The core's own words, exactly as the HTTP API's problem+json ``detail``.
        for name, arguments in [
            ("get_suggestion", {"id": "nope"}),
            ("get_suggestion", {"id": "sug_01J0000000000000000000000A"}),
            ("submit_suggestion", {"title": "t", "diff": "not a diff"}),
            ("submit_suggestion", {"title": " ", "diff": DIFF}),
            ("submit_suggestion", {"title": "t", "diff": DIFF, "base_ref": "a..b"}),
        ]:
            text = await error(client, name, arguments)
            direct = (
                core.get_suggestion(arguments["id"])
                if name == "get_suggestion"
                else core.submit(AGENT, **arguments)
            )
            with pytest.raises(StorykitError) as raised:
                await direct
            assert text == raised.value.detail
        s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF})
    assert s["status"] == "pending"


async def test_a_longer_wait_than_allowed_counts_as_the_most(core: Storykit) -> None:
    waits: set[anyio.CancelScope] = set()
    async with agent(core, stops=waits) as client:
        s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF})
        results: list[dict[str, Any]] = []

        async def wait() -> None:
            results.append(await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 600}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await parked(waits)
            await core.review(REVIEWER, s["id"], action="reject", comment="no")
    assert results[0]["status"] == "rejected"


async def test_submit_honours_the_idempotency_key(core: Storykit) -> None:
    async with agent(core) as client:
        args = {"title": "t", "diff": DIFF, "idempotency_key": "retry-1"}
        first = await ok(client, "submit_suggestion", args)
        again = await ok(client, "submit_suggestion", args)
        other = await error(client, "submit_suggestion", args | {"title": "changed"})
    assert again["id"] == first["id"]
    assert len(await core.list_suggestions()) == 1
    assert "idempotency" in other.lower()


async def test_a_wait_ends_at_once_when_the_host_stops_it(core: Storykit) -> None:
    """The web host cancels every registered wait at shutdown: it answers ``pending``."""
    stops: set[anyio.CancelScope] = set()
    async with agent(core, stops=stops) as client:
        s = await ok(client, "submit_suggestion", {"title": "t", "diff": DIFF})
        results: list[dict[str, Any]] = []

        async def wait() -> None:
            results.append(await ok(client, "wait_for_review", {"id": s["id"], "timeout_s": 45}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await parked(stops)
            assert len(stops) == 1
            for scope in stops:
                scope.cancel()
    assert results[0]["status"] == "pending" and stops == set()
