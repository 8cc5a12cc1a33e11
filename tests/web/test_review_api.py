"""The reviewer's loop over HTTP: line comments, revisions and the interdiff, superseded
suggestions, and bulk decisions (every response checked against the OpenAPI document)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client
from realserver import AGENT_KEY, REVIEWER_KEY
from test_api import as_, build, problem, serving

from storykit.backends import Draft, GenerateRequest
from storykit.hookspecs import hookimpl
from storykit.testing import make_diff

pytestmark = pytest.mark.anyio

BASE = "".join(f"line {n}\n" for n in range(1, 31))
DIFF_1 = make_diff("m.py", BASE, BASE.replace("line 10\n", "ten\n"))
DIFF_2 = make_diff("m.py", BASE, BASE.replace("line 10\n", "TEN\n"))


async def submit(client: Client, diff: str = DIFF_1, title: str = "t") -> dict[str, Any]:
    r = await client.post(
        "/suggestions", headers=as_(AGENT_KEY), json={"title": title, "diff": diff}
    )
    assert r.status_code == 201
    return await r.get_json()  # type: ignore[no-any-return]


async def test_line_comments_revisions_and_the_interdiff(tmp_path: Path) -> None:
    async with serving(build(tmp_path)) as client:
        s = await submit(client)
        note = {"file": "m.py", "line": 10, "side": "new", "body": "call it ten_"}
        r = await client.post(
            "/suggest/review",
            headers=as_(REVIEWER_KEY),
            json={"id": s["id"], "action": "revise", "comments": [note]},
        )
        assert r.status_code == 200, await r.get_data()
        bad = note | {"line": 25}
        body = await problem(
            await client.post(
                "/suggest/review",
                headers=as_(REVIEWER_KEY),
                json={"id": s["id"], "action": "approve", "comments": [bad]},
            ),
            422,
        )
        assert "line 25 of m.py is not in the diff on the new side" in body["detail"]
        await problem(
            await client.post(
                "/suggest/review",
                headers=as_(REVIEWER_KEY),
                json={"id": s["id"], "action": "approve", "comments": [note | {"side": "left"}]},
            ),
            422,
        )

        # What the agent reads: exactly which line.
        got = await (await client.get(f"/suggestions/{s['id']}", headers=as_(AGENT_KEY))).get_json()
        [c] = got["reviews"][0]["comments"]
        assert (c["file"], c["line"], c["side"], c["body"], c["outdated"]) == (
            "m.py",
            10,
            "new",
            "call it ten_",
            False,
        )

        r = await client.post(
            f"/suggestions/{s['id']}/revisions", headers=as_(AGENT_KEY), json={"diff": DIFF_2}
        )
        assert r.status_code == 201
        listed = await (
            await client.get(f"/suggestions/{s['id']}/revisions", headers=as_(AGENT_KEY))
        ).get_json()
        assert [(x["number"], x["diff"], x["by"]) for x in listed["items"]] == [
            (1, DIFF_1, "bot"),
            (2, DIFF_2, "bot"),
        ]
        one = await client.get(f"/suggestions/{s['id']}/revisions/1", headers=as_(AGENT_KEY))
        assert (await one.get_json())["diff_hash"] == s["diff_hash"]
        await problem(
            await client.get(f"/suggestions/{s['id']}/revisions/7", headers=as_(AGENT_KEY)), 404
        )
        changes = await (
            await client.get(
                f"/suggestions/{s['id']}/interdiff?from=1&to=2", headers=as_(AGENT_KEY)
            )
        ).get_json()
        assert (changes["from"], changes["to"], changes["files"]) == (1, 2, ["m.py"])
        assert "-ten\n+TEN\n" in changes["diff"]
        await problem(
            await client.get(f"/suggestions/{s['id']}/interdiff?from=x", headers=as_(AGENT_KEY)),
            422,
        )
        got = await (await client.get(f"/suggestions/{s['id']}", headers=as_(AGENT_KEY))).get_json()
        assert got["reviews"][0]["comments"][0]["outdated"] is True


class Again:
    name = "again"

    def __init__(self) -> None:
        self.diff = make_diff("a.py", "x = 1\n", "x = 2\n")

    async def generate(self, request: GenerateRequest) -> list[Draft]:
        return [Draft(title="a", diff=self.diff)]


async def test_generate_reports_unchanged_and_superseded(tmp_path: Path) -> None:
    source = Again()

    class Plugin:
        @hookimpl
        def storykit_register_sources(self, register: Any) -> None:
            register(source)

    async with serving(build(tmp_path, plugins=[Plugin()])) as client:
        run = await client.post("/suggest/generate", headers=as_(REVIEWER_KEY), json={})
        [first] = (await run.get_json())["items"]
        again = await (
            await client.post("/suggest/generate", headers=as_(REVIEWER_KEY), json={})
        ).get_json()
        assert (again["count"], again["unchanged"], again["superseded"]) == (0, 1, [])
        source.diff = make_diff("a.py", "x = 1\n", "x = 3\n")
        third = await (
            await client.post("/suggest/generate", headers=as_(REVIEWER_KEY), json={})
        ).get_json()
        assert (third["count"], third["superseded"]) == (1, [first["id"]])
        page = await (
            await client.get("/suggestions?status=superseded", headers=as_(AGENT_KEY))
        ).get_json()
        assert [x["id"] for x in page["items"]] == [first["id"]]
        assert page["items"][0]["superseded_by"] == third["items"][0]["id"]
        body = await problem(
            await client.post(
                "/suggest/review",
                headers=as_(REVIEWER_KEY),
                json={"id": first["id"], "action": "approve"},
            ),
            409,
        )
        assert "superseded" in body["detail"]


async def test_bulk_decisions_report_each_item(tmp_path: Path) -> None:
    async with serving(build(tmp_path)) as client:
        one = await submit(client, make_diff("a.py", "a\n", "b\n"))
        two = await submit(client, make_diff("b.py", "a\n", "b\n"))
        missing = "sug_01JD0000000000000000000000"
        r = await client.post(
            "/suggest/review/bulk",
            headers=as_(REVIEWER_KEY),
            json={"ids": [one["id"], missing], "action": "approve", "comment": "lgtm"},
        )
        assert r.status_code == 200
        reply = await r.get_json()
        assert (reply["ok"], reply["refused"]) == (1, 1)
        assert [(i["id"], i["ok"], i["status"]) for i in reply["items"]] == [
            (one["id"], True, "approved"),
            (missing, False, None),
        ]
        assert reply["items"][1]["problem"]["status"] == 404
        by_filter = await (
            await client.post(
                "/suggest/review/bulk",
                headers=as_(REVIEWER_KEY),
                json={"filter": {"status": "pending"}, "action": "reject", "comment": "no"},
            )
        ).get_json()
        assert [(i["id"], i["status"]) for i in by_filter["items"]] == [(two["id"], "rejected")]
        events = await (await client.get("/events/log", headers=as_(AGENT_KEY))).get_json()
        reviewed = [e["data"]["id"] for e in events["items"] if e["type"] == "suggest.reviewed"]
        assert reviewed == [one["id"], two["id"]]  # one event per decision
        await problem(
            await client.post(
                "/suggest/review/bulk",
                headers=as_(AGENT_KEY),
                json={"ids": [one["id"]], "action": "approve"},
            ),
            403,
        )
        await problem(
            await client.post(
                "/suggest/review/bulk", headers=as_(REVIEWER_KEY), json={"action": "approve"}
            ),
            422,
        )
