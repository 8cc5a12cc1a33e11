"""Pull requests after they open: kept on the plan, updated by signed webhook deliveries
(each handled once, on SQLite and PostgreSQL, across processes) and by polling."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from storykit.backends import PRRequest, PRUpdate
from storykit.errors import Invalid, NotConfigured, PluginError, Unauthorized
from storykit.hookspecs import hookimpl
from storykit.models import Checks, PRResult, PRState, PullRequest, Suggestion, Variant
from storykit.pulls import apply_update, changed, overall
from storykit.services import Storykit
from storykit.settings import SettingsError
from storykit.testing import AGENT, REVIEWER, make_diff, make_settings, open_core
from storykit.webhooks import sign_github

pytestmark = pytest.mark.anyio

SECRET = "s3cret-webhook-key-0123456789"
DIFF = make_diff("pkg/mod.py", "a = 1\n", "a = 2\n")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)


# -- the merge rules, on their own ------------------------------------------------------
def _pr(**fields: Any) -> PullRequest:
    base: dict[str, Any] = {
        "backend": "fakehub",
        "repository": "octo/hello",
        "number": 7,
        "url": "https://forge.example/octo/hello/pull/7",
        "branch": "storykit/x",
        "variant": "all",
        "head": "aaa",
    }
    return PullRequest(**(base | fields))


def _update(**fields: Any) -> PRUpdate:
    return PRUpdate(repository="octo/hello", number=7, **fields)


def test_checks_are_the_worst_of_them() -> None:
    assert overall({}) is Checks.NONE
    assert overall({"a": Checks.PASSING, "b": Checks.PASSING}) is Checks.PASSING
    assert overall({"a": Checks.PASSING, "b": Checks.PENDING}) is Checks.PENDING
    assert overall({"a": Checks.PENDING, "b": Checks.FAILING}) is Checks.FAILING


def test_a_merged_pull_request_stays_merged_and_older_news_is_ignored() -> None:
    merged = apply_update(_pr(), _update(state=PRState.MERGED, at=T1, merged_at=T1))
    assert (merged.state, merged.merged_at, merged.forge_updated_at) == (PRState.MERGED, T1, T1)
    assert apply_update(merged, _update(state=PRState.OPEN, at=T1)).state is PRState.MERGED
    closed = apply_update(_pr(), _update(state=PRState.CLOSED, at=T1))
    # A delivery from before the close (delivered late) neither reopens it nor moves its head.
    late = apply_update(closed, _update(state=PRState.OPEN, head="old", at=T0))
    assert not changed(closed, late)
    reopened = apply_update(closed, _update(state=PRState.OPEN, at=T1))
    assert reopened.state is PRState.OPEN


def test_checks_belong_to_the_head_commit() -> None:
    pr = apply_update(_pr(), _update(checks={"ci": Checks.FAILING}, checks_head="aaa"))
    assert (pr.checks, pr.check_runs) == (Checks.FAILING, {"ci": Checks.FAILING})
    # Checks of another commit are not this head's: ignored.
    other = apply_update(pr, _update(checks={"ci": Checks.PASSING}, checks_head="zzz"))
    assert not changed(pr, other)
    # A new head starts with no checks; its own then count.
    pushed = apply_update(pr, _update(head="bbb", at=T1))
    assert (pushed.head, pushed.checks, dict(pushed.check_runs)) == ("bbb", Checks.NONE, {})
    one = apply_update(pushed, _update(checks={"lint": Checks.PASSING}, checks_head="bbb"))
    two = apply_update(one, _update(checks={"test": Checks.PENDING}))
    assert (two.checks, set(two.check_runs)) == (Checks.PENDING, {"lint", "test"})
    polled = apply_update(two, _update(checks={"test": Checks.PASSING}, all_checks=True))
    assert (polled.checks, dict(polled.check_runs)) == (Checks.PASSING, {"test": Checks.PASSING})


# -- a forge, as a throwaway plugin -------------------------------------------------------
class Planner:
    name = "one"

    async def plan(self, goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        return [Variant(key="all", title="All", suggestion_ids=tuple(s.id for s in suggestions))]


class FakeHub:
    """Opens pull request #7 of octo/hello; reads deliveries shaped
    ``{"number", "state"?, "head"?, "check"?, "conclusion"?}`` from the ``github`` route."""

    name = "fakehub"
    capabilities = frozenset({"pull_request"})
    webhook = "github"

    def __init__(self) -> None:
        self.polls: list[PullRequest] = []
        self.answers: list[PRUpdate] = []
        self.broken = False

    async def open(self, request: PRRequest) -> PRResult:
        return PRResult(
            backend=self.name,
            branch=request.branch,
            diff=request.variant.diff,
            dry_run=False,
            commit="aaa",
            url="https://forge.example/octo/hello/pull/7",
            plan_id=request.plan_id,
            variant=request.variant.key,
            number=7,
            repository="octo/hello",
        )

    def webhook_updates(self, event: str, payload: Mapping[str, Any]) -> Sequence[PRUpdate]:
        if self.broken:
            raise KeyError("number")
        if event != "pull_request":
            return []
        checks = {payload["check"]: Checks(payload["conclusion"])} if "check" in payload else {}
        state = PRState(payload["state"]) if "state" in payload else None
        return [
            PRUpdate(
                repository="octo/hello",
                number=int(payload["number"]),
                state=state,
                head=payload.get("head"),
                checks=checks,
            )
        ]

    async def poll(self, pr: PullRequest) -> PRUpdate:
        self.polls.append(pr)
        return self.answers.pop(0)


class ForgePlugin:
    def __init__(self) -> None:
        self.hub = FakeHub()

    @hookimpl
    def storykit_register_planners(self, register: Any) -> None:
        register(Planner())

    @hookimpl
    def storykit_register_pr_backends(self, register: Any) -> None:
        register(self.hub)


def delivery(payload: Mapping[str, Any], ident: str, *, secret: str = SECRET) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    headers = {
        "x-github-delivery": ident,
        "x-github-event": "pull_request",
        "x-hub-signature-256": sign_github(secret, body),
        "content-type": "application/json",
    }
    return {"headers": headers, "body": body}


async def opened(core: Storykit) -> str:
    s = await core.submit(AGENT, title="Bump a", diff=DIFF)
    await core.review(REVIEWER, s.id, action="approve")
    plan = await core.plan(REVIEWER, goal="ship it")
    await core.open_pr(REVIEWER, plan.id, variant="all", dry_run=False)
    return plan.id


async def types_since(core: Storykit, after: int) -> list[str]:
    return [e.type for e in await core.read_events(after=after)]


def env_for(db_env: Mapping[str, str], **more: str) -> dict[str, str]:
    return {"PR_BACKEND": "fakehub", **db_env, **more}


# -- opened and followed ------------------------------------------------------------------
async def test_an_opened_pr_is_kept_on_the_plan_and_followed_by_webhooks(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    plugin = ForgePlugin()
    env = env_for(db_env, STORYKIT_GITHUB_WEBHOOK_SECRET=SECRET)
    async with open_core(tmp_path, plugins={"forge": plugin}, env=env) as core:
        plan_id = await opened(core)
        [pr] = (await core.get_plan(plan_id)).pull_requests
        assert (pr.backend, pr.repository, pr.number, pr.state, pr.head, pr.opened_by) == (
            "fakehub",
            "octo/hello",
            7,
            PRState.OPEN,
            "aaa",
            REVIEWER.name,
        )
        before = await core.store.last_event_id()

        out = await core.receive_webhook(
            "github", **delivery({"number": 7, "state": "merged"}, "d-1")
        )
        assert (out.result, out.status) == ("updated", 200)
        [event] = await core.read_events(after=before)
        assert event.type == "pr.updated"
        assert event.data["plan_id"] == plan_id
        assert (event.data["state"], event.data["was"]["state"]) == ("merged", "open")
        assert event.data["via"] == "webhook"
        assert (await core.get_plan(plan_id)).pull_requests[0].state is PRState.MERGED

        # The same delivery again (a forge's retry, a replay): nothing changes.
        again = await core.receive_webhook(
            "github", **delivery({"number": 7, "state": "merged"}, "d-1")
        )
        assert (again.result, again.status) == ("replayed", 200)
        # Another delivery saying what storykit holds: no event either.
        same = await core.receive_webhook(
            "github", **delivery({"number": 7, "state": "merged"}, "d-2")
        )
        assert same.result == "unchanged"
        # About a pull request storykit did not open: accepted, ignored.
        unknown = await core.receive_webhook(
            "github", **delivery({"number": 99, "state": "closed"}, "d-3")
        )
        assert (unknown.result, unknown.status) == ("ignored", 202)
        assert await types_since(core, before) == ["pr.updated"]


async def test_a_delivery_that_is_not_signed_with_the_secret_changes_nothing(
    tmp_path: Path,
) -> None:
    plugin = ForgePlugin()
    env = env_for({}, STORYKIT_GITHUB_WEBHOOK_SECRET=SECRET)
    async with open_core(tmp_path, plugins={"forge": plugin}, env=env) as core:
        plan_id = await opened(core)
        before = await core.store.last_event_id()
        forged = delivery({"number": 7, "state": "closed"}, "d-1", secret="not-the-secret-at-all")
        with pytest.raises(Unauthorized, match="X-Hub-Signature-256"):
            await core.receive_webhook("github", **forged)
        unsigned = delivery({"number": 7, "state": "closed"}, "d-1")
        del unsigned["headers"]["x-hub-signature-256"]
        with pytest.raises(Unauthorized):
            await core.receive_webhook("github", **unsigned)
        tampered = delivery({"number": 7, "state": "open"}, "d-1")
        tampered["body"] = tampered["body"].replace(b"open", b"closed")
        with pytest.raises(Unauthorized):
            await core.receive_webhook("github", **tampered)
        unnamed = delivery({"number": 7, "state": "closed"}, "d-1")
        del unnamed["headers"]["x-github-delivery"]
        with pytest.raises(Invalid, match="X-GitHub-Delivery"):
            await core.receive_webhook("github", **unnamed)
        assert await types_since(core, before) == []
        assert not await core.store.delivery_seen("github", "d-1")
        # A GitLab delivery needs GitLab's secret, which is not set: webhooks from it are off.
        with pytest.raises(NotConfigured, match="STORYKIT_GITLAB_WEBHOOK_SECRET"):
            await core.receive_webhook("gitlab", headers={"x-gitlab-token": SECRET}, body=b"{}")
        assert (await core.get_plan(plan_id)).pull_requests[0].state is PRState.OPEN


async def test_a_plugin_that_cannot_read_a_delivery_is_a_plugin_error(tmp_path: Path) -> None:
    plugin = ForgePlugin()
    env = env_for({}, STORYKIT_GITHUB_WEBHOOK_SECRET=SECRET)
    async with open_core(tmp_path, plugins={"forge": plugin}, env=env) as core:
        await opened(core)
        plugin.hub.broken = True
        with pytest.raises(PluginError, match=r"PRTracker\.webhook_updates"):
            await core.receive_webhook("github", **delivery({"number": 7}, "d-1"))
        # Not recorded: the forge's redelivery is handled once the plugin is fixed.
        assert not await core.store.delivery_seen("github", "d-1")


@contextlib.asynccontextmanager
async def two_processes(
    tmp_path: Path, plugin: ForgePlugin, env: Mapping[str, str]
) -> AsyncIterator[tuple[Storykit, Storykit]]:
    """Two cores on one database, as two replicas (or the server and a CLI) are."""
    settings = make_settings(tmp_path, env)
    async with (
        open_core(tmp_path, plugins={"forge": plugin}, settings=settings) as one,
        open_core(tmp_path, plugins={"forge": plugin}, settings=settings) as other,
    ):
        yield one, other


async def test_a_delivery_is_handled_once_across_processes(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    plugin = ForgePlugin()
    env = env_for(db_env, STORYKIT_GITHUB_WEBHOOK_SECRET=SECRET)
    async with two_processes(tmp_path, plugin, env) as (one, other):
        plan_id = await opened(one)
        before = await one.store.last_event_id()
        sent = delivery({"number": 7, "state": "closed"}, "d-1")
        results: list[str] = []

        async def receive(core: Storykit) -> None:
            results.append((await core.receive_webhook("github", **sent)).result)

        async with anyio.create_task_group() as tg:  # the forge's retry reaches the other
            for core in (one, other, one, other):
                tg.start_soon(receive, core)
        assert sorted(results) == ["replayed", "replayed", "replayed", "updated"]
        assert await types_since(one, before) == ["pr.updated"]
        # Later, the other process sees it too, and a reopen (a new delivery) counts.
        assert (await other.receive_webhook("github", **sent)).result == "replayed"
        reopened = delivery({"number": 7, "state": "open"}, "d-2")
        assert (await other.receive_webhook("github", **reopened)).result == "updated"
        assert (await one.get_plan(plan_id)).pull_requests[0].state is PRState.OPEN


async def test_a_pr_update_never_loses_a_concurrent_change_to_the_plan(tmp_path: Path) -> None:
    plugin = ForgePlugin()
    env = env_for({}, STORYKIT_GITHUB_WEBHOOK_SECRET=SECRET)
    async with open_core(tmp_path, plugins={"forge": plugin}, env=env) as core:
        plan_id = await opened(core)
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: core.select(REVIEWER, plan_id, variant="all"))
            for n, (check, state) in enumerate([("lint", "passing"), ("test", "failing")]):
                sent = delivery({"number": 7, "check": check, "conclusion": state}, f"d-{n}")
                tg.start_soon(partial(core.receive_webhook, "github", **sent))
        plan = await core.get_plan(plan_id)
        assert plan.selected == "all"
        assert dict(plan.pull_requests[0].check_runs) == {
            "lint": Checks.PASSING,
            "test": Checks.FAILING,
        }
        assert plan.pull_requests[0].checks is Checks.FAILING


# -- polling ----------------------------------------------------------------------------
async def test_without_a_webhook_secret_open_prs_are_polled(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    plugin = ForgePlugin()
    hub = plugin.hub
    async with open_core(tmp_path, plugins={"forge": plugin}, env=env_for(db_env)) as core:
        plan_id = await opened(core)
        before = await core.store.last_event_id()
        hub.answers = [
            PRUpdate(
                repository="octo/hello",
                number=7,
                state=PRState.OPEN,
                head="aaa",
                checks={"ci": Checks.PENDING},
                all_checks=True,
                at=T0,
            )
        ]
        [event] = await core.poll_pull_requests()
        assert (event.type, event.data["checks"], event.data["via"]) == (
            "pr.updated",
            "pending",
            "poll",
        )
        assert hub.polls[0].number == 7
        hub.answers = [dataclasses.replace(hub_answer(), at=T0)]
        assert await core.poll_pull_requests() == []  # nothing new: no event
        hub.answers = [
            dataclasses.replace(
                hub_answer(), state=PRState.MERGED, checks={"ci": Checks.PASSING}, at=T1
            )
        ]
        [merged] = await core.poll_pull_requests()
        assert (merged.data["state"], merged.data["checks"]) == ("merged", "passing")
        polls = len(hub.polls)
        assert await core.poll_pull_requests() == []
        assert len(hub.polls) == polls  # a merged pull request is not asked about again
        assert await types_since(core, before) == ["pr.updated", "pr.updated"]
        assert (await core.get_plan(plan_id)).pull_requests[0].state is PRState.MERGED


def hub_answer() -> PRUpdate:
    return PRUpdate(
        repository="octo/hello",
        number=7,
        state=PRState.OPEN,
        head="aaa",
        checks={"ci": Checks.PENDING},
        all_checks=True,
    )


async def test_with_a_webhook_secret_prs_are_not_polled(tmp_path: Path) -> None:
    plugin = ForgePlugin()
    env = env_for({}, STORYKIT_GITHUB_WEBHOOK_SECRET=SECRET)
    async with open_core(tmp_path, plugins={"forge": plugin}, env=env) as core:
        await opened(core)
        assert await core.poll_pull_requests() == []
        assert plugin.hub.polls == []


async def test_a_failing_poll_is_a_plugin_failure_and_the_next_one_tries_again(
    tmp_path: Path,
) -> None:
    plugin = ForgePlugin()
    async with open_core(tmp_path, plugins={"forge": plugin}, env=env_for({})) as core:
        await opened(core)
        plugin.hub.answers = []  # poll() raises IndexError
        assert await core.poll_pull_requests() == []
        assert [f.hook for f in core.registry.failures] == ["PRTracker.poll"]
        plugin.hub.answers = [dataclasses.replace(hub_answer(), state=PRState.CLOSED)]
        [event] = await core.poll_pull_requests()
        assert event.data["state"] == "closed"


# -- settings ------------------------------------------------------------------------------
def test_webhook_secrets_come_from_settings_and_a_bad_one_stops_start_up(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    settings = make_settings(tmp_path, {"STORYKIT_GITLAB_WEBHOOK_SECRET_FILE": str(secret_file)})
    assert settings.webhook_secret("gitlab") == SECRET
    assert settings.webhook_secret("github") is None  # no default
    assert SECRET not in repr(settings)
    bad = {
        "STORYKIT_GITHUB_WEBHOOK_SECRET": "short-one",
        "STORYKIT_GITLAB_WEBHOOK_SECRET_FILE": str(tmp_path / "missing"),
    }
    for name, value in bad.items():
        with pytest.raises(SettingsError, match=name) as caught:
            make_settings(tmp_path, {name: value})
        assert "short-one" not in caught.value.detail
    with pytest.raises(SettingsError, match="both set"):
        make_settings(
            tmp_path,
            {
                "STORYKIT_GITLAB_WEBHOOK_SECRET": SECRET,
                "STORYKIT_GITLAB_WEBHOOK_SECRET_FILE": str(secret_file),
            },
        )
    with pytest.raises(SettingsError, match="STORYKIT_PR_POLL_INTERVAL"):
        make_settings(tmp_path, {"STORYKIT_PR_POLL_INTERVAL": "-1"})
    assert make_settings(tmp_path, {"STORYKIT_PR_POLL_INTERVAL": "0"}).pr_poll_interval == 0
