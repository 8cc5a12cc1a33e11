"""The HTTP contract through Quart's test client, serving lifespan included."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
import structlog
from pydantic import TypeAdapter
from quart import Quart
from quart.typing import TestClientProtocol as Client
from realserver import ADMIN_KEY, AGENT_KEY, KEYS, OTHER_KEY, REVIEWER_KEY

import storykit_plugins.planner as planner
import storykit_plugins.pr_dryrun as pr_dryrun
from storykit.hookspecs import hookimpl
from storykit.models import Plan, PolicyDecision, PRResult, Revision, Suggestion, Variant
from storykit.plugins import get_plugin_manager
from storykit.testing import FakeBackend, FakePlanner, fake_plugin, make_diff, make_settings
from storykit_quart import create_app
from storykit_quart.schemas import (
    BulkReply,
    EventPage,
    GenerateReply,
    Health,
    InterdiffReply,
    Me,
    PlanPage,
    PluginsReply,
    PolicyDocument,
    Problem,
    RevisionList,
    SuggestionPage,
    Ticket,
    id_pattern,
)

pytestmark = pytest.mark.anyio
DIFF = make_diff("pkg/a.py", "a = 1\n", "a = 2\n")


def dry_run() -> FakeBackend:
    return FakeBackend(name="dry-run", capabilities=frozenset())


def planner_and_dry_run() -> object:
    return fake_plugin(FakePlanner(name="all"), dry_run())


def build(tmp_path: Path, *, plugins: Sequence[object] = (), **env: str) -> Quart:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(planner_and_dry_run(), name="test-plugin")
    for n, plugin in enumerate(plugins):
        pm.register(plugin, name=f"extra-{n}")
    settings = make_settings(
        tmp_path, {"API_TOKENS": KEYS, "RATE_LIMIT_RPS": "1000", "RATE_LIMIT_BURST": "1000"} | env
    )
    return create_app(settings, plugin_manager=pm)


MODELS: dict[str, Any] = {
    model.__name__: model
    for model in (
        BulkReply,
        EventPage,
        GenerateReply,
        Health,
        InterdiffReply,
        Me,
        Plan,
        PlanPage,
        PluginsReply,
        PolicyDecision,
        PolicyDocument,
        PRResult,
        Problem,
        Revision,
        RevisionList,
        Suggestion,
        SuggestionPage,
        Ticket,
    )
}
"""The models behind the OpenAPI document's response schemas, by schema title."""


@contextlib.asynccontextmanager
async def serving(app: Quart) -> AsyncIterator[Client]:
    """A test client on the serving app; when the test is done, every response it got
    (errors included) is checked against the app's OpenAPI document."""
    async with app.test_app() as test_app:
        client = test_app.test_client()
        seen: list[tuple[str, str, Any]] = []
        opened = client.open

        async def recording_open(path: str, *args: Any, method: str = "GET", **kw: Any) -> Any:
            response = await opened(path, *args, method=method, **kw)
            seen.append((method.lower(), path, response))
            return response

        client.open = recording_open  # type: ignore[method-assign]
        yield client
        client.open = opened  # type: ignore[method-assign]
        doc = await (await client.get("/openapi.json")).get_json()
        for method, path, response in seen:
            await conforms_to_openapi(doc, method, path, response)


async def conforms_to_openapi(doc: dict[str, Any], method: str, path: str, response: Any) -> None:
    where = f"{method.upper()} {path} → {response.status_code}"
    bare = urlsplit(path).path
    operation = next(
        (
            ops[method]
            for template, ops in doc["paths"].items()
            if method in ops and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), bare)
        ),
        None,
    )
    if operation is None:  # no such operation: a CORS preflight, the dashboard, or an error
        if method != "options" and not bare.startswith("/story/") and bare != "/openapi.json":
            assert response.status_code in (404, 405), where
            assert response.mimetype == "application/problem+json", where
        return
    responses = operation["responses"]
    documented = responses.get(str(response.status_code)) or responses.get("default")
    assert documented, f"{where}: not documented"
    assert response.mimetype in documented.get("content", {}), f"{where}: {response.mimetype}"
    schema = documented["content"][response.mimetype]["schema"]
    if response.mimetype.endswith("json"):
        name = schema["$ref"].rsplit("/", 1)[1] if "$ref" in schema else schema["title"]
        conforms(MODELS[name], await response.get_json())


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with serving(build(tmp_path)) as test_client:
        yield test_client


def as_(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


async def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, await response.get_data()
    assert response.content_type == "application/problem+json"
    body = await response.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


def conforms(model: Any, body: Any) -> None:
    """The body validates against the model the OpenAPI document names for it."""
    TypeAdapter(model).validate_python(body)


async def test_responses_match_the_documented_models(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).get_json()
    refs = {
        (path, method): response["content"]["application/json"]["schema"]
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        for response in op["responses"].values()
        if "application/json" in response.get("content", {})
    }
    assert refs[("/suggestions", "post")]["title"] == "Suggestion"
    r = await client.post("/suggestions", headers=as_(AGENT_KEY), json={"title": "t", "diff": DIFF})
    s = await r.get_json()
    conforms(Suggestion, s)
    sid = s["id"]
    await client.post(
        "/suggest/review", headers=as_(REVIEWER_KEY), json={"id": sid, "action": "approve"}
    )
    conforms(
        SuggestionPage, await (await client.get("/suggestions", headers=as_(AGENT_KEY))).get_json()
    )
    plan = await (
        await client.post("/plan", headers=as_(REVIEWER_KEY), json={"goal": "g"})
    ).get_json()
    conforms(Plan, plan)
    conforms(PlanPage, await (await client.get("/plans", headers=as_(AGENT_KEY))).get_json())
    pr = await client.post(
        "/dev/pr-from-plan",
        headers=as_(REVIEWER_KEY),
        json={"plan_id": plan["id"], "variant": "all"},
    )
    conforms(PRResult, await pr.get_json())
    conforms(
        PolicyDocument, await (await client.get("/policies", headers=as_(AGENT_KEY))).get_json()
    )
    check = await client.post("/policies/check", headers=as_(AGENT_KEY), json={"diff": DIFF})
    conforms(PolicyDecision, await check.get_json())
    wrong_base = {"diff": DIFF, "base_ref": "a..b"}
    refused = await client.post("/policies/check", headers=as_(AGENT_KEY), json=wrong_base)
    assert refused.status_code == 422
    assert "base_ref 'a..b' is not a valid git ref" in (await refused.get_json())["detail"]
    conforms(EventPage, await (await client.get("/events/log", headers=as_(AGENT_KEY))).get_json())
    conforms(PluginsReply, await (await client.get("/plugins", headers=as_(AGENT_KEY))).get_json())
    conforms(Ticket, await (await client.post("/events/ticket", headers=as_(AGENT_KEY))).get_json())
    conforms(Health, await (await client.get("/health")).get_json())
    me = await (await client.get("/me", headers=as_(REVIEWER_KEY))).get_json()
    conforms(Me, me)
    assert me == {"name": "me", "role": "reviewer"}


async def test_health_needs_no_key_and_reports_the_database(client: Client) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"


# coredis leaves an anyio memory stream unclosed when a connection is refused (its own
# internals, collected later): not storykit's to close, so that one warning is let through.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_health_reports_redis_when_rate_limits_live_there(tmp_path: Path) -> None:
    async with serving(build(tmp_path / "up", REDIS_URL="redis://127.0.0.1:6379/0")) as up:
        response = await up.get("/health")
        assert response.status_code == 200, await response.get_data()
        body = await response.get_json()
        conforms(Health, body)
        assert body["redis"] == "ok" and body["database"] == "ok"
    # Nothing listens on port 1: the replica cannot rate-limit, so it is not ready.
    async with serving(build(tmp_path / "down", REDIS_URL="redis://127.0.0.1:1/0")) as down:
        response = await down.get("/health")
        assert response.status_code == 503
        body = await response.get_json()
        assert body["redis"] == "unavailable" and body["status"] == "unavailable"
        assert body["database"] == "ok"


async def test_the_whole_review_flow_over_http(client: Client) -> None:
    r = await client.post(
        "/suggestions", headers=as_(AGENT_KEY), json={"title": "Bump", "diff": DIFF}
    )
    assert r.status_code == 201
    s = await r.get_json()
    assert s["status"] == "pending" and s["files"] == ["pkg/a.py"]
    r = await client.get(f"/suggestions/{s['id']}", headers=as_(AGENT_KEY))
    assert (await r.get_json())["id"] == s["id"]
    r = await client.post(
        "/suggest/review", headers=as_(REVIEWER_KEY), json={"id": s["id"], "action": "approve"}
    )
    assert (await r.get_json())["status"] == "approved"
    r = await client.get("/suggestions?status=approved", headers=as_(AGENT_KEY))
    assert [x["id"] for x in (await r.get_json())["items"]] == [s["id"]]
    r = await client.post("/plan", headers=as_(REVIEWER_KEY), json={"goal": "ship"})
    assert r.status_code == 201
    plan = await r.get_json()
    assert plan["variants"][0]["suggestion_ids"] == [s["id"]]
    r = await client.post(
        f"/plans/{plan['id']}/select", headers=as_(REVIEWER_KEY), json={"variant": "all"}
    )
    assert (await r.get_json())["selected"] == "all"
    r = await client.post(
        "/dev/pr-from-plan", headers=as_(REVIEWER_KEY), json={"plan_id": plan["id"]}
    )
    pr = await r.get_json()
    assert pr["dry_run"] is True and pr["diff"] == DIFF and pr["branch"].startswith("storykit/")
    r = await client.get("/events/log?after=0", headers=as_(AGENT_KEY))
    types = [e["type"] for e in (await r.get_json())["items"]]
    assert types == [
        "suggest.submitted",
        "suggest.reviewed",
        "plan.created",
        "plan.selected",
        "pr.dry_run",
    ]


async def test_revision_by_the_proposer_resets_approval(client: Client) -> None:
    r = await client.post("/suggestions", headers=as_(AGENT_KEY), json={"title": "t", "diff": DIFF})
    sid = (await r.get_json())["id"]
    await client.post(
        "/suggest/review", headers=as_(REVIEWER_KEY), json={"id": sid, "action": "approve"}
    )
    other = make_diff("pkg/a.py", "a = 1\n", "a = 3\n")
    r = await client.post(
        f"/suggestions/{sid}/revisions", headers=as_(REVIEWER_KEY), json={"diff": other}
    )
    await problem(r, 403)
    r = await client.post(
        f"/suggestions/{sid}/revisions", headers=as_(AGENT_KEY), json={"diff": other}
    )
    assert r.status_code == 201
    revised = await r.get_json()
    assert revised["status"] == "pending" and revised["revision"] == 2


# -- what ships is what was approved (SPEC §4) --------------------------------------


async def _approve(client: Client, sid: str) -> Any:
    r = await client.post(
        "/suggest/review", headers=as_(REVIEWER_KEY), json={"id": sid, "action": "approve"}
    )
    assert r.status_code == 200, await r.get_data()
    return await r.get_json()


async def test_a_plan_older_than_the_approved_revision_cannot_open_a_pr(client: Client) -> None:
    r = await client.post("/suggestions", headers=as_(AGENT_KEY), json={"title": "t", "diff": DIFF})
    sid = (await r.get_json())["id"]
    await _approve(client, sid)
    plan = await (
        await client.post("/plan", headers=as_(REVIEWER_KEY), json={"goal": "g"})
    ).get_json()
    [variant] = plan["variants"]
    assert variant["suggestion_hashes"] == {sid: (await r.get_json())["diff_hash"]}
    pr = {"plan_id": plan["id"], "variant": "all"}
    other = make_diff("pkg/a.py", "a = 1\n", "a = 3\n")
    r = await client.post(
        f"/suggestions/{sid}/revisions", headers=as_(AGENT_KEY), json={"diff": other}
    )
    assert r.status_code == 201
    await problem(await client.post("/dev/pr-from-plan", headers=as_(REVIEWER_KEY), json=pr), 409)
    assert (await _approve(client, sid))["status"] == "approved"
    r = await client.post("/dev/pr-from-plan", headers=as_(REVIEWER_KEY), json=pr)
    body = await problem(r, 409)
    assert sid in body["detail"] and "make a new plan" in body["detail"]


async def test_reapproval_after_a_same_diff_revision_takes_effect(client: Client) -> None:
    r = await client.post("/suggestions", headers=as_(AGENT_KEY), json={"title": "t", "diff": DIFF})
    sid = (await r.get_json())["id"]
    await _approve(client, sid)
    r = await client.post(
        f"/suggestions/{sid}/revisions",
        headers=as_(AGENT_KEY),
        json={"diff": DIFF, "title": "a better title"},
    )
    assert (await r.get_json())["status"] == "pending"
    assert (await _approve(client, sid))["status"] == "approved"
    r = await client.get(f"/suggestions/{sid}", headers=as_(AGENT_KEY))
    assert (await r.get_json())["status"] == "approved"


class LyingPlanner:
    name = "liar"

    async def plan(self, goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        ids = tuple(s.id for s in suggestions)
        diff = "".join(s.diff for s in suggestions) + "+import os; os.system('rm -rf /')\n"
        return [Variant(key="all", title="All", suggestion_ids=ids, diff=diff)]


async def test_a_planners_own_diff_never_reaches_the_plan_or_the_pr(tmp_path: Path) -> None:
    class LiarPlugin:
        @hookimpl
        def storykit_register_planners(self, register: Any) -> None:
            register(LyingPlanner())

        @hookimpl
        def storykit_register_pr_backends(self, register: Any) -> None:
            register(dry_run())

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(LiarPlugin(), name="liar-plugin")
    settings = make_settings(tmp_path, {"API_TOKENS": KEYS, "RATE_LIMIT_RPS": "1000"})
    async with create_app(settings, plugin_manager=pm).test_app() as app:
        client = app.test_client()
        r = await client.post(
            "/suggestions", headers=as_(AGENT_KEY), json={"title": "t", "diff": DIFF}
        )
        await _approve(client, (await r.get_json())["id"])
        r = await client.post("/plan", headers=as_(REVIEWER_KEY), json={"goal": "g"})
        plan = await r.get_json()
        assert plan["variants"][0]["diff"] == DIFF
        pr = {"plan_id": plan["id"], "variant": "all"}
        r = await client.post("/dev/pr-from-plan", headers=as_(REVIEWER_KEY), json=pr)
        assert (await r.get_json())["diff"] == DIFF


async def test_refine_without_a_refiner_says_how_to_configure(client: Client) -> None:
    r = await client.post("/suggestions", headers=as_(AGENT_KEY), json={"title": "t", "diff": DIFF})
    sid = (await r.get_json())["id"]
    r = await client.post("/suggest/llm", headers=as_(REVIEWER_KEY), json={"id": sid})
    body = await problem(r, 503)
    assert "STORYKIT_LLM_BASE_URL" in body["detail"]


# -- PRs: real runs, branch names, diffs that do not apply ---------------------------------


async def _approved_plan(client: Client, diff: str = DIFF) -> str:
    r = await client.post("/suggestions", headers=as_(AGENT_KEY), json={"title": "t", "diff": diff})
    await _approve(client, (await r.get_json())["id"])
    r = await client.post("/plan", headers=as_(REVIEWER_KEY), json={"goal": "g"})
    return str((await r.get_json())["id"])


async def test_a_real_run_without_a_real_pr_backend_is_refused(client: Client) -> None:
    plan_id = await _approved_plan(client)
    plugins = await (await client.get("/plugins", headers=as_(AGENT_KEY))).get_json()
    assert plugins["pr_backend"] == "dry-run"  # the dashboard offers no real run then
    body = {"plan_id": plan_id, "variant": "all", "dry_run": False}
    r = await client.post("/dev/pr-from-plan", headers=as_(REVIEWER_KEY), json=body)
    detail = (await problem(r, 503))["detail"]
    assert detail.startswith("a real run needs a real PR backend: set PR_BACKEND=git")
    r = await client.get("/events/log?after=0", headers=as_(AGENT_KEY))
    assert not any(e["type"].startswith("pr.") for e in (await r.get_json())["items"])


async def test_the_branch_can_be_named_and_is_validated(client: Client) -> None:
    plan_id = await _approved_plan(client)
    body = {"plan_id": plan_id, "variant": "all", "branch": "fix/tidy-imports"}
    r = await client.post("/dev/pr-from-plan", headers=as_(REVIEWER_KEY), json=body)
    assert (await r.get_json())["branch"] == "fix/tidy-imports"
    for bad in ("a..b", "-x", "has space", "x.lock"):
        r = await client.post(
            "/dev/pr-from-plan", headers=as_(REVIEWER_KEY), json=body | {"branch": bad}
        )
        assert "not a valid git branch name" in (await problem(r, 422))["detail"]
    r = await client.post("/dev/pr-from-plan", headers=as_(REVIEWER_KEY), json=body | {"branch": 7})
    assert "branch" in (await problem(r, 422))["detail"]


def _git_repo(path: Path) -> Path:
    path.mkdir()
    (path / "README.md").write_text("hello\n", encoding="utf-8")
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    for args in (["init", "-q"], ["add", "-A"], [*ident, "commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)
    return path


async def test_a_dry_run_of_a_diff_that_does_not_apply_is_a_409(tmp_path: Path) -> None:
    git_repo = _git_repo(tmp_path / "repo")
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(pr_dryrun, name="dry-run")
    pm.register(planner, name="planner")
    env = {"API_TOKENS": KEYS, "RATE_LIMIT_RPS": "1000", "REPO_PATH": str(git_repo)}
    app = create_app(make_settings(tmp_path, env), plugin_manager=pm)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        typo = make_diff("README.md", "teh\n", "the\n")  # README.md says "hello"
        plan_id = await _approved_plan(client, typo)
        body = {"plan_id": plan_id, "variant": "all"}
        r = await client.post("/dev/pr-from-plan", headers=as_(REVIEWER_KEY), json=body)
        detail = (await problem(r, 409))["detail"]
        assert "the diff of variant 'all' does not apply to HEAD" in detail
        assert "patch failed: README.md:1" in detail  # git's reason
        assert "ask its proposer for a revision made against HEAD" in detail
        r = await client.get("/events/log?after=0", headers=as_(AGENT_KEY))
        assert "pr.dry_run" not in [e["type"] for e in (await r.get_json())["items"]]


# -- auth and roles -------------------------------------------------------------------

SID = "sug_01JDZ7Q0V8M4W2K6T3R9X5C1B0"
PID = "plan_01JDZ7Q0V8M4W2K6T3R9X5C1B0"
ROUTES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/suggestions", None, "agent"),
    ("POST", "/suggestions", {"title": "t", "diff": DIFF}, "agent"),
    ("GET", f"/suggestions/{SID}", None, "agent"),
    ("POST", f"/suggestions/{SID}/revisions", {"diff": DIFF}, "agent"),
    ("POST", "/suggest/generate", {"sources": []}, "reviewer"),
    ("POST", "/suggest/llm", {"id": SID}, "reviewer"),
    ("POST", "/suggest/review", {"id": SID, "action": "approve"}, "reviewer"),
    ("POST", "/plan", {"goal": "g"}, "reviewer"),
    ("GET", "/plans", None, "agent"),
    ("GET", f"/plans/{PID}", None, "agent"),
    ("POST", f"/plans/{PID}/select", {"variant": "all"}, "reviewer"),
    ("POST", "/dev/pr-from-plan", {"plan_id": PID}, "reviewer"),
    ("GET", "/policies", None, "agent"),
    ("PUT", "/policies", {}, "admin"),
    ("POST", "/policies/check", {"diff": DIFF}, "agent"),
    ("GET", "/plugins", None, "agent"),
    ("GET", "/events/log", None, "agent"),
    ("GET", "/me", None, "agent"),
    ("POST", "/events/ticket", None, "agent"),
]
ROLE_KEYS = {"agent": AGENT_KEY, "reviewer": REVIEWER_KEY, "admin": ADMIN_KEY}
RANK = ["agent", "reviewer", "admin"]


@pytest.mark.parametrize(("method", "path", "body", "needed"), ROUTES)
async def test_every_route_enforces_its_role(
    client: Client, method: str, path: str, body: dict[str, Any] | None, needed: str
) -> None:
    r = await client.open(path, method=method, json=body)
    await problem(r, 401)
    r = await client.open(path, method=method, json=body, headers=as_("not-a-real-key"))
    await problem(r, 401)
    for role in RANK:
        r = await client.open(path, method=method, json=body, headers=as_(ROLE_KEYS[role]))
        if RANK.index(role) < RANK.index(needed):
            detail = (await problem(r, 403))["detail"]
            assert needed in detail
        else:
            assert r.status_code not in (401, 403), (role, await r.get_data())


async def test_an_agent_key_can_never_approve(client: Client) -> None:
    r = await client.post(
        "/suggestions", headers=as_(REVIEWER_KEY), json={"title": "t", "diff": DIFF}
    )
    sid = (await r.get_json())["id"]
    r = await client.post(
        "/suggest/review", headers=as_(AGENT_KEY), json={"id": sid, "action": "approve"}
    )
    await problem(r, 403)
    r = await client.post(
        "/suggest/review", headers=as_(REVIEWER_KEY), json={"id": sid, "action": "approve"}
    )
    assert "proposed" in (await problem(r, 403))["detail"]
    r = await client.post(
        "/suggest/review", headers=as_(OTHER_KEY), json={"id": sid, "action": "approve"}
    )
    assert r.status_code == 200


async def test_test_keys_need_explicit_test_mode(tmp_path: Path) -> None:
    async with serving(build(tmp_path / "a")) as client:
        r = await client.get("/plugins", headers=as_("test-token"))
        await problem(r, 401)
    async with serving(build(tmp_path / "b", STORYKIT_TEST_MODE="true")) as client:
        r = await client.get("/plugins", headers=as_("test-token"))
        assert r.status_code == 200


# -- bad input ---------------------------------------------------------------------------


async def test_bad_bodies_get_clear_problems_and_store_nothing(client: Client) -> None:
    h = as_(AGENT_KEY)
    r = await client.post(
        "/suggestions", headers=h | {"Content-Type": "application/json"}, data="{nope"
    )
    assert "not valid JSON" in (await problem(r, 400))["detail"]
    r = await client.post("/suggestions", headers=h, json=["a list"])
    assert (await problem(r, 422))["detail"] == "the body must be a JSON object"
    r = await client.post("/suggestions", headers=h, json={"title": "t", "dif": DIFF})
    detail = (await problem(r, 422))["detail"]
    assert "diff: Field required" in detail and "dif: unknown field" in detail
    r = await client.post("/suggestions", headers=h, json={"title": 5, "diff": DIFF})
    assert "title" in (await problem(r, 422))["detail"]
    r = await client.post("/suggestions", headers=h, json={"title": "t", "diff": "garbage"})
    assert "diff" in (await problem(r, 422))["detail"]
    r = await client.post(
        "/suggestions",
        headers=h,
        json={"title": "t", "diff": make_diff("../../etc/x", "a\n", "b\n")},
    )
    assert "leaves the repository" in (await problem(r, 422))["detail"]
    r = await client.get("/suggestions/..%2F..%2Fetc%2Fpasswd", headers=h)
    assert r.status_code in (404, 422)
    r = await client.get("/suggestions/sug_bad", headers=h)
    await problem(r, 422)
    r = await client.get("/suggestions?limit=100000", headers=h)
    await problem(r, 422)
    r = await client.get("/suggestions?status=merged", headers=h)
    assert "not one of" in (await problem(r, 422))["detail"]
    r = await client.post(
        "/dev/pr-from-plan", headers=as_(REVIEWER_KEY), json={"plan_id": PID, "dry_run": "false"}
    )
    await problem(r, 422)
    r = await client.get("/suggestions", headers=h)
    assert (await r.get_json())["items"] == []


NOT_JSON_TEXT = [
    ("latin-1", {}, '{"title": "caf\xe9", "diff": "x"}'.encode("latin-1"), "not UTF-8"),
    ("UTF-16", {}, '{"title": "t", "diff": "x"}'.encode("utf-16"), "UTF-8"),
    (
        "UTF-16 declared",
        {"Content-Type": "application/json; charset=utf-16"},
        '{"title": "t", "diff": "x"}'.encode("utf-16-le"),
        "UTF-8",
    ),
    ("deep arrays", {}, b"[" * 100_000 + b"]" * 100_000, "too deeply"),
    ("deep objects", {}, b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "too deeply"),
    ("a lone surrogate", {}, b'{"title": "t\\ud800", "diff": "x"}', "surrogate"),
    ("NaN", {}, b'{"title": "t", "diff": "x", "rationale": NaN}', "NaN"),
    ("malformed", {}, b'{"title": "t", "diff"}', "line 1, column 22"),
    ("empty", {}, b"", "empty"),
]


@pytest.mark.parametrize(
    ("_name", "headers", "data", "says"), NOT_JSON_TEXT, ids=[c[0] for c in NOT_JSON_TEXT]
)
async def test_bodies_that_are_not_json_text_get_400_and_change_nothing(
    client: Client, _name: str, headers: dict[str, str], data: bytes, says: str
) -> None:
    policies = await (await client.get("/policies", headers=as_(AGENT_KEY))).get_json()
    sent = {"Content-Type": "application/json"} | headers
    for method, path, key in (
        ("POST", "/suggestions", AGENT_KEY),
        ("PUT", "/policies", ADMIN_KEY),
        ("POST", "/policies/check", AGENT_KEY),
    ):
        # quart.typing's TestClientProtocol.open() lacks the real open()'s default for json.
        r = await client.open(path, method=method, headers=as_(key) | sent, data=data)  # type: ignore[call-arg]
        detail = (await problem(r, 400))["detail"]
        assert says in detail
        assert "Content-Type" not in detail  # it was sent: say what is wrong with the body
    assert (await (await client.get("/suggestions", headers=as_(AGENT_KEY))).get_json())[
        "items"
    ] == []
    assert await (await client.get("/policies", headers=as_(AGENT_KEY))).get_json() == policies


async def test_a_body_that_is_not_declared_json_gets_415_naming_the_header(client: Client) -> None:
    body = b'{"title": "t", "diff": "x"}'
    for headers in ({}, {"Content-Type": "text/plain"}):
        r = await client.post("/suggestions", headers=as_(AGENT_KEY) | headers, data=body)
        assert "Content-Type: application/json" in (await problem(r, 415))["detail"]


async def test_the_router_never_redirects_and_answers_problems(client: Client) -> None:
    for path in ("/story/static/v/%2Fetc%2Fpasswd", "/story/static/v//etc/passwd"):
        r = await client.get(path, headers={"Host": "evil.example"})
        await problem(r, 404)
        assert "Location" not in r.headers
    r = await client.get("/story/ui/?x=1", headers={"Host": "evil.example"})
    assert r.status_code == 308 and r.headers["Location"] == "/story/ui?x=1"  # relative


async def test_unicode_and_binary_diffs_are_stored_intact(client: Client) -> None:
    diff = make_diff("docs/ünï.md", "ä\n", "ö — ✓\n")
    r = await client.post(
        "/suggestions", headers=as_(AGENT_KEY), json={"title": "Ünïcode ✓ 😀", "diff": diff}
    )
    assert r.status_code == 201
    sid = (await r.get_json())["id"]
    stored = await (await client.get(f"/suggestions/{sid}", headers=as_(AGENT_KEY))).get_json()
    assert stored["diff"] == diff and stored["title"] == "Ünïcode ✓ 😀"
    binary = (
        "diff --git a/i.png b/i.png\nnew file mode 100644\nindex 0000000..1111111\n"
        "Binary files /dev/null and b/i.png differ\n"
    )
    r = await client.post(
        "/suggestions", headers=as_(AGENT_KEY), json={"title": "img", "diff": binary}
    )
    assert r.status_code == 201


async def test_oversized_bodies_get_413(tmp_path: Path) -> None:
    async with serving(build(tmp_path, MAX_BODY_BYTES="2048")) as client:
        r = await client.post(
            "/suggestions", headers=as_(AGENT_KEY), json={"title": "t", "diff": "x" * 5000}
        )
        await problem(r, 413)


async def test_unknown_routes_and_methods_are_problems(client: Client) -> None:
    await problem(await client.get("/nope"), 404)
    r = await client.delete("/suggestions", headers=as_(AGENT_KEY))
    await problem(r, 405)
    assert set(r.headers["Allow"].split(", ")) >= {"GET", "POST"}


async def test_numbers_beyond_what_the_store_holds_are_invalid_input(client: Client) -> None:
    r = await client.get(f"/events/log?after={2**64}", headers=as_(AGENT_KEY))
    await problem(r, 422)


async def test_policies_put_is_validated_and_atomic(client: Client) -> None:
    before = await (await client.get("/policies", headers=as_(AGENT_KEY))).get_json()
    r = await client.put("/policies", headers=as_(ADMIN_KEY), json={"nope": {}})
    assert "unknown policy" in (await problem(r, 422))["detail"]
    r = await client.put("/policies", headers=as_(ADMIN_KEY), json={"x": 1})
    await problem(r, 422)
    after = await (await client.get("/policies", headers=as_(AGENT_KEY))).get_json()
    assert after == before
    r = await client.post("/policies/check", headers=as_(AGENT_KEY), json={"diff": DIFF})
    assert (await r.get_json())["outcome"] == "allow"


# -- retries and concurrent edits (SPEC §4) ---------------------------------------------------


@pytest.fixture
async def policy_client(tmp_path: Path) -> AsyncIterator[Client]:
    """An app with the first-party ``paths`` and ``opa`` policies."""
    from storykit_plugins.policies import opa, paths

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(planner_and_dry_run(), name="test-plugin")
    pm.register(paths, name="paths")
    pm.register(opa, name="opa")
    settings = make_settings(
        tmp_path, {"API_TOKENS": KEYS, "RATE_LIMIT_RPS": "1000", "RATE_LIMIT_BURST": "1000"}
    )
    async with create_app(settings, plugin_manager=pm).test_app() as test_app:
        yield test_app.test_client()


async def test_get_edit_put_policies_with_etag_and_if_match(policy_client: Client) -> None:
    client = policy_client
    r = await client.get("/policies", headers=as_(AGENT_KEY))
    doc = await r.get_json()
    assert r.headers["ETag"] == f'"{doc["version"]}"'
    # What GET returned, edited, goes back as is (it was a 422 before).
    doc["policies"]["paths"]["deny"] = ["secrets/**"]
    r = await client.put("/policies", headers=as_(ADMIN_KEY), json=doc)
    assert r.status_code == 200, await r.get_data()
    saved = await r.get_json()
    assert saved["policies"]["paths"]["deny"] == ["secrets/**"]
    assert r.headers["ETag"] == f'"{saved["version"]}"'
    # The same document again: its version is stale now, so another admin's edit is safe.
    body = await problem(await client.put("/policies", headers=as_(ADMIN_KEY), json=doc), 412)
    assert f"at version {saved['version']}, not {doc['version']}" in body["detail"]
    bare = {"paths": {"deny": ["private/**"]}}
    stale = as_(ADMIN_KEY) | {"If-Match": f'"{doc["version"]}"'}
    await problem(await client.put("/policies", headers=stale, json=bare), 412)
    assert (await (await client.get("/policies", headers=as_(AGENT_KEY))).get_json()) == saved
    fresh = as_(ADMIN_KEY) | {"If-Match": f'"0000000000000000", "{saved["version"]}"'}
    r = await client.put("/policies", headers=fresh, json=bare)
    assert r.status_code == 200, await r.get_data()
    anything = as_(ADMIN_KEY) | {"If-Match": "*"}
    assert (await client.put("/policies", headers=anything, json={})).status_code == 200
    weak = as_(ADMIN_KEY) | {"If-Match": f'W/"{saved["version"]}"'}
    await problem(await client.put("/policies", headers=weak, json={}), 412)


async def test_a_policy_may_not_name_a_server_or_variable_the_operator_did_not_allow(
    policy_client: Client,
) -> None:
    leak = {"opa": {"mode": "rest", "url": "http://127.0.0.1:9", "token_env": "API_TOKENS"}}
    r = await policy_client.put("/policies", headers=as_(ADMIN_KEY), json=leak)
    body = await problem(r, 422)
    assert "STORYKIT_POLICY_URLS" in body["detail"] and "adminkey123" not in body["detail"]


async def test_a_retried_submit_with_an_idempotency_key_returns_the_first_answer(
    client: Client,
) -> None:
    keyed = as_(AGENT_KEY) | {"Idempotency-Key": "retry-1"}
    body = {"title": "t", "diff": DIFF}
    first = await client.post("/suggestions", headers=keyed, json=body)
    assert first.status_code == 201
    last = (await (await client.get("/events/log", headers=as_(AGENT_KEY))).get_json())["last_id"]
    again = await client.post("/suggestions", headers=keyed, json=body)
    assert again.status_code == 201
    assert await again.get_json() == await first.get_json()
    log = await (await client.get("/events/log", headers=as_(AGENT_KEY))).get_json()
    assert log["last_id"] == last
    changed = await client.post("/suggestions", headers=keyed, json=body | {"title": "u"})
    assert "already used for a different request" in (await problem(changed, 422))["detail"]
    bad = as_(AGENT_KEY) | {"Idempotency-Key": ""}
    await problem(await client.post("/suggestions", headers=bad, json=body), 422)
    page = await (await client.get("/suggestions", headers=as_(AGENT_KEY))).get_json()
    assert len(page["items"]) == 1
    sid = (await first.get_json())["id"]
    keyed = as_(AGENT_KEY) | {"Idempotency-Key": "retry-2"}
    revision = {"diff": make_diff("pkg/a.py", "a = 1\n", "a = 3\n")}
    r1 = await client.post(f"/suggestions/{sid}/revisions", headers=keyed, json=revision)
    r2 = await client.post(f"/suggestions/{sid}/revisions", headers=keyed, json=revision)
    assert (r1.status_code, r2.status_code) == (201, 201)
    assert await r1.get_json() == await r2.get_json()
    assert (await r2.get_json())["revision"] == 2


async def test_concurrent_submits_with_one_idempotency_key_create_one(client: Client) -> None:
    keyed = as_(AGENT_KEY) | {"Idempotency-Key": "at-once"}
    answers: list[tuple[int, Any]] = []

    async def submit() -> None:
        r = await client.post("/suggestions", headers=keyed, json={"title": "t", "diff": DIFF})
        answers.append((r.status_code, await r.get_json()))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(submit)
    assert {status for status, _ in answers} == {201}
    assert len({body["id"] for _, body in answers}) == 1
    page = await (await client.get("/suggestions", headers=as_(AGENT_KEY))).get_json()
    assert len(page["items"]) == 1


# -- rate limits, request ids, CORS, logs, OpenAPI -------------------------------------------


async def test_rate_limited_calls_get_429_with_retry_after(tmp_path: Path) -> None:
    async with serving(build(tmp_path, RATE_LIMIT_RPS="1", RATE_LIMIT_BURST="3")) as client:
        statuses = [
            (await client.get("/plans", headers=as_(AGENT_KEY))).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 200]
        r = await client.get("/plans", headers=as_(AGENT_KEY))
        await problem(r, 429)
        assert int(r.headers["Retry-After"]) >= 1
        assert r.headers["RateLimit-Policy"] == '"default";q=3;w=3'
        r = await client.get("/plans", headers=as_(REVIEWER_KEY))  # per agent
        assert r.status_code == 200
        assert r.headers["RateLimit"].startswith('"default";r=2;')
        # as_text=False is get_data()'s default; Quart's overloads say True, so it is spelt out.
        metrics = (await (await client.get("/metrics")).get_data(as_text=False)).decode()
        assert 'storykit_rate_limited_total{agent="bot"} 1.0' in metrics


async def test_request_ids_are_taken_or_made_and_echoed(client: Client) -> None:
    r = await client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123"
    r = await client.get("/health", headers={"X-Request-Id": "bad id <script>" + "x" * 200})
    assert len(r.headers["X-Request-Id"]) == 32 and "<" not in r.headers["X-Request-Id"]
    r = await client.get("/nope", headers={"X-Request-Id": "trace-9"})
    assert (await r.get_json())["request_id"] == "trace-9"


async def test_cors_is_closed_unless_configured(tmp_path: Path) -> None:
    async with serving(build(tmp_path / "closed")) as client:
        r = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in r.headers
    origins = "https://review.example,vscode-webview://*"
    async with serving(build(tmp_path / "open", CORS_ORIGINS=origins)) as client:
        r = await client.get("/health", headers={"Origin": "https://review.example"})
        assert r.headers["Access-Control-Allow-Origin"] == "https://review.example"
        r = await client.get("/health", headers={"Origin": "vscode-webview://abc123"})
        assert r.headers["Access-Control-Allow-Origin"] == "vscode-webview://abc123"
        r = await client.get("/health", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in r.headers
        r = await client.options(
            "/suggestions",
            headers={
                "Origin": "https://review.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "X-API-Key, Content-Type",
            },
        )
        assert r.status_code == 200
        assert "x-api-key" in r.headers["Access-Control-Allow-Headers"].lower()


async def test_keys_never_reach_the_logs(tmp_path: Path) -> None:
    from storykit_quart.logs import configure_logging

    log_file = tmp_path / "log.jsonl"
    root_handlers = logging.getLogger().handlers[:]
    configure_logging("DEBUG", log_file)
    try:
        app = build(tmp_path)
        async with app.test_app() as test_app:
            client = test_app.test_client()  # not serving(): it would log its own requests
            await client.get("/plans", headers=as_(AGENT_KEY))
            await client.get(f"/plans?key={REVIEWER_KEY}", headers=as_(AGENT_KEY))
            await client.get("/plans", headers=as_("wrong-key-xyz"))
    finally:  # later tests must not log into this file
        structlog.reset_defaults()
        for handler in logging.getLogger().handlers:
            if handler not in root_handlers and isinstance(handler, logging.StreamHandler):
                handler.stream.close()
        logging.getLogger().handlers[:] = root_handlers
    text = log_file.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    requests = [line for line in lines if line.get("event") == "request"]
    assert len(requests) == 3
    assert {r["agent"] for r in requests} == {"bot", None}
    for secret in (AGENT_KEY, REVIEWER_KEY, "wrong-key-xyz"):
        assert secret not in text


async def test_openapi_documents_every_route(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).get_json()
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    for method, path, _, _ in ROUTES:
        template = path.replace(SID, "{suggestion_id}").replace(PID, "{plan_id}")
        assert (method, template) in documented, (method, template)
    submit = doc["paths"]["/suggestions"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert submit


async def test_openapi_documents_errors_events_and_public_routes(client: Client) -> None:
    doc = await (await client.get("/openapi.json")).get_json()
    required = doc["components"]["schemas"]["Problem"]["required"]
    assert required == ["type", "title", "status", "detail"]
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            errors = {s: r for s, r in op["responses"].items() if s == "default" or s >= "400"}
            assert "default" in errors, where
            for status, response in errors.items():
                if (path, status) == ("/health", "503"):
                    continue  # readiness: the Health body, not a problem
                assert response["content"] == {
                    "application/problem+json": {"schema": problem_ref}
                }, (where, status)
                assert response["description"], (where, status)
            public = op.get("security") == []
            # Webhooks: the delivery's signature is the auth (test_webhooks.py).
            assert public == (path in ("/health", "/metrics") or path.startswith("/webhooks/")), (
                where
            )
            if not public and path != "/events":  # /events: below
                assert {"401", "403", "429"} <= errors.keys(), where
                assert "Retry-After" in errors["429"]["headers"], where
            if "requestBody" in op:
                assert op["requestBody"]["required"] is True, where
                assert {"400", "413", "415", "422"} <= errors.keys(), where
            if "{" in path:
                assert {"404", "422"} <= errors.keys(), where
    ids = doc["paths"]["/suggestions/{suggestion_id}"]["get"]["parameters"]
    assert ids == [
        {
            "name": "suggestion_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": id_pattern("sug")},
        }
    ]
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]
    assert "text/plain" in metrics["content"]
    events = doc["paths"]["/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert {"400", "401"} <= events["responses"].keys()
    assert {p["name"] for p in events["parameters"]} == {"last_event_id", "Last-Event-ID"}
    schemes = doc["components"]["securitySchemes"]
    assert [schemes[next(iter(s))] for s in events["security"]] == [
        {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        {"type": "apiKey", "in": "query", "name": "key"},
        {"type": "apiKey", "in": "query", "name": "ticket"},
    ]


async def test_openapi_follows_metrics_public(tmp_path: Path) -> None:
    async with serving(build(tmp_path, METRICS_PUBLIC="false")) as client:
        doc = await (await client.get("/openapi.json")).get_json()
        assert "security" not in doc["paths"]["/metrics"]["get"]
        assert "401" in doc["paths"]["/metrics"]["get"]["responses"]
        await problem(await client.get("/metrics"), 401)


async def test_lists_page_with_next_after(client: Client) -> None:
    ids = []
    for n in range(3):
        diff = make_diff(f"m{n}.py", "a\n", "b\n")
        r = await client.post(
            "/suggestions", headers=as_(AGENT_KEY), json={"title": "t", "diff": diff}
        )
        ids.append((await r.get_json())["id"])
    first = await (await client.get("/suggestions?limit=2", headers=as_(AGENT_KEY))).get_json()
    assert [s["id"] for s in first["items"]] == ids[:0:-1]  # newest first
    assert first["next_after"] == ids[1]
    after = f"/suggestions?limit=2&after={first['next_after']}"
    rest = await (await client.get(after, headers=as_(AGENT_KEY))).get_json()
    assert [s["id"] for s in rest["items"]] == [ids[0]]
    assert rest["next_after"] is None


# -- hostile values: each gets a 4xx problem and leaves what is stored intact ---------------

BAD = "\ud800"  # an unpaired surrogate: valid JSON (an escape), but no UTF-8 can hold it


async def stored_state(client: Client) -> Any:
    """Everything the API lets one read back: suggestions, plans, policies, the log."""
    h = as_(AGENT_KEY)
    return [
        await (await client.get(path, headers=h)).get_json()
        for path in ("/suggestions?limit=200", "/plans?limit=200", "/policies", "/events/log")
    ]


class AnyConfigPolicy:
    """A policy that takes any section, so the policy document reaches the store as sent."""

    name = "any-config"

    def default_config(self) -> dict[str, Any]:
        return {}

    def validate_config(self, config: Any) -> None:
        pass

    async def check(self, subject: Any, config: Any) -> list[Any]:
        return []


class AnyConfigPlugin:
    @hookimpl
    def storykit_register_policies(self, register: Any) -> None:
        register(AnyConfigPolicy())


async def test_hostile_text_and_numbers_get_4xx_and_store_nothing(tmp_path: Path) -> None:
    async with build(tmp_path, plugins=[AnyConfigPlugin()]).test_app() as app:
        await hostile_requests(app.test_client())


async def hostile_requests(client: Client) -> None:
    r = await client.post("/suggestions", headers=as_(AGENT_KEY), json={"title": "t", "diff": DIFF})
    sid = (await r.get_json())["id"]
    before = await stored_state(client)
    bad_line = make_diff("pkg/a.py", "a = 1\n", f"a = '{BAD}'\n")
    agent, reviewer, admin = as_(AGENT_KEY), as_(REVIEWER_KEY), as_(ADMIN_KEY)
    requests: list[tuple[str, str, dict[str, str], Any]] = [
        ("POST", "/suggestions", agent, {"title": f"t{BAD}", "diff": DIFF}),
        ("POST", "/suggestions", agent, {"title": "t", "diff": bad_line}),
        ("POST", "/suggestions", agent, {"title": "t", "diff": DIFF, "rationale": BAD}),
        ("POST", "/suggestions", agent, {"title": "t", "diff": DIFF, "base_ref": f"main{BAD}"}),
        ("POST", f"/suggestions/{sid}/revisions", agent, {"diff": bad_line}),
        ("POST", f"/suggestions/{sid}/revisions", agent, {"diff": DIFF, "title": BAD}),
        ("POST", f"/suggestions/{sid}/revisions", agent, {"diff": DIFF, "rationale": BAD}),
        ("POST", "/suggest/review", reviewer, {"id": sid, "action": "revise", "comment": BAD}),
        ("POST", "/suggest/review", reviewer, {"id": f"{sid}{BAD}", "action": "reject"}),
        ("POST", "/plan", reviewer, {"goal": f"ship {BAD}"}),
        ("POST", "/plan", reviewer, {"goal": "ship", "suggestion_ids": [BAD]}),
        ("POST", f"/plans/{PID}%ED%A0%80/select", reviewer, {"variant": "all"}),
        ("GET", f"/suggestions/{SID}%ED%A0%80", agent, None),
        ("POST", "/dev/pr-from-plan", reviewer, {"plan_id": f"{PID}{BAD}"}),
        ("POST", "/suggest/generate", reviewer, {"paths": [f"pkg/{BAD}.py"]}),
        ("PUT", "/policies", admin, {"any-config": {"deny": [f"secret/{BAD}"]}}),
        ("PUT", "/policies", admin, {"any-config": {BAD: 1}}),
        ("POST", "/policies/check", agent, {"diff": bad_line}),
        ("POST", "/policies/check", agent, {"diff": DIFF, "title": BAD}),
        ("GET", f"/events/log?after={2**64}", agent, None),
        ("GET", f"/events/log?after={2**63}", agent, None),
        ("GET", f"/events/log?limit={2**64}", agent, None),
        ("GET", f"/suggestions?limit={2**64}", agent, None),
        ("GET", f"/plans?limit={2**64}", agent, None),
        ("GET", f"/suggestions?after={SID}%ED%A0%80", agent, None),
    ]
    wrong = []
    for method, path, headers, body in requests:
        r = await client.open(path, method=method, headers=headers, json=body)
        if not 400 <= r.status_code < 500 or r.content_type != "application/problem+json":
            wrong.append((method, path, body, r.status_code, await r.get_data()))
    assert wrong == [], "\n".join(f"{w[0]} {w[1]} {w[3]} {w[4][-120:]!r}" for w in wrong)
    assert await stored_state(client) == before
    r = await client.get(f"/events/log?after={2**63 - 1}", headers=agent)  # the largest id
    assert (await r.get_json())["items"] == []
    r = await client.put("/policies", headers=admin, json={"any-config": {"n": 2**64}})
    assert (await r.get_json())["policies"]["any-config"] == {"n": 2**64}  # JSON text holds it


async def test_one_agents_bad_text_never_fails_other_submissions(client: Client) -> None:
    # Submitted at the same moment, the writes share group commits: the bad ones must be
    # refused on their own, before they reach a batch, and every good one stored.
    statuses: dict[str, list[int]] = {"good": [], "bad": []}

    async def submit(kind: str, n: int) -> None:
        title = f"t{n}" if kind == "good" else f"t{n}{BAD}"
        diff = make_diff(f"pkg/m{n}.py", "a\n", "b\n")
        r = await client.post(
            "/suggestions", headers=as_(AGENT_KEY), json={"title": title, "diff": diff}
        )
        statuses[kind].append(r.status_code)

    async with anyio.create_task_group() as tg:
        for n in range(40):
            tg.start_soon(submit, "good", n)
            tg.start_soon(submit, "bad", n)
    # The HTTP edge refuses a lone surrogate as a body that is not JSON text (400); the
    # core would refuse it too (422), for callers that are not HTTP.
    assert statuses == {"good": [201] * 40, "bad": [400] * 40}
    r = await client.get("/suggestions?limit=200", headers=as_(AGENT_KEY))
    assert len((await r.get_json())["items"]) == 40
