"""The use cases, end to end through the core on a real SQLite file, with throwaway plugins."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from unidiff.patch import PatchSet

from storykit._base import _branch
from storykit.backends import Draft, GenerateRequest, PolicySubject, PRRequest
from storykit.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotConfigured,
    NotFound,
    PluginError,
    PreconditionFailed,
)
from storykit.filters import SuggestionFilter
from storykit.hookspecs import hookimpl
from storykit.models import Conflict as PlanConflict
from storykit.models import Finding, Outcome, PRResult, Risk, Status, Suggestion, Variant
from storykit.services import Storykit
from storykit.store._batch import prepare as batch_prepare
from storykit.testing import (
    ADMIN,
    AGENT,
    OTHER_AGENT,
    OTHER_REVIEWER,
    REVIEWER,
    FakePolicy,
    fake_plugin,
    make_diff,
    open_core,
)

pytestmark = pytest.mark.anyio

DIFF = make_diff("pkg/mod.py", "a = 1\n", "a = 2\n")
OTHER_DIFF = make_diff("pkg/mod.py", "a = 1\n", "a = 3\n")
SECRET_DIFF = make_diff("conf.py", "", "PASSWORD = 'forbidden'\n")


async def events_since(core: Storykit, after: int) -> list[str]:
    return [e.type for e in await core.read_events(after=after)]


async def approved(core: Storykit, diff: str = DIFF) -> Suggestion:
    s = await core.submit(AGENT, title="Bump a", diff=diff)
    return await core.review(REVIEWER, s.id, action="approve")


# -- submit ------------------------------------------------------------------------


async def test_submit_stores_screens_and_writes_one_event(tmp_path: Path) -> None:
    async with open_core(tmp_path, plugins={"deny": fake_plugin(FakePolicy())}) as core:
        before = await core.store.last_event_id()
        s = await core.submit(AGENT, title="Bump a", diff=DIFF, rationale="because")
        assert s.status is Status.PENDING
        assert s.risk is Risk.LOW
        assert s.files == ("pkg/mod.py",)
        assert s.agent == "bot"
        assert s.decision is not None and s.decision.policy_version
        assert await events_since(core, before) == ["suggest.submitted"]
        assert await core.get_suggestion(s.id) == s
        await core.artifacts.flush()  # written after the commit, off the reply's path
        artifact = json.loads((tmp_path / "data" / "suggestions" / f"{s.id}.json").read_text())
        assert artifact["diff"] == DIFF
        assert (tmp_path / "data" / "suggestions" / f"{s.id}.md").read_text().startswith("# Bump a")


async def test_policy_deny_blocks_and_blocked_cannot_be_approved(tmp_path: Path) -> None:
    async with open_core(tmp_path, plugins={"deny": fake_plugin(FakePolicy())}) as core:
        before = await core.store.last_event_id()
        s = await core.submit(AGENT, title="Add conf", diff=SECRET_DIFF)
        assert s.status is Status.BLOCKED
        assert s.risk is Risk.HIGH
        assert [f.rule for f in s.findings] == ["word"]
        assert await events_since(core, before) == ["suggest.blocked"]
        with pytest.raises(Conflict, match="blocked"):
            await core.review(REVIEWER, s.id, action="approve")
        assert (await core.get_suggestion(s.id)).status is Status.BLOCKED


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": "", "diff": DIFF}, "title is required"),
        ({"title": "t", "diff": ""}, "diff is required"),
        ({"title": "t", "diff": "not a diff at all\n"}, "changes no file"),
        ({"title": "t", "diff": make_diff("../etc/passwd", "a\n", "b\n")}, "leaves the repository"),
        ({"title": "t" * 301, "diff": DIFF}, "too long"),
        ({"title": "t", "diff": DIFF, "base_ref": "main..evil"}, "not a valid git ref"),
        ({"title": 5, "diff": DIFF}, "must be a string"),
    ],
)
async def test_submit_rejects_bad_input_and_stores_nothing(
    tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    async with open_core(tmp_path) as core:
        before = await core.store.last_event_id()
        with pytest.raises(Invalid, match=message):
            await core.submit(AGENT, **fields)
        assert await core.list_suggestions() == []
        assert await core.store.last_event_id() == before
        assert list((tmp_path / "data" / "suggestions").iterdir()) == []


async def test_ids_from_input_are_checked_before_any_path_is_built(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        for bad in ("../../etc/passwd", "sug_../../x", "", "sug_01JD"):
            with pytest.raises(Invalid):
                await core.get_suggestion(bad)
        with pytest.raises(NotFound):
            await core.get_suggestion("sug_01JDZ7Q0V8M4W2K6T3R9X5C1B0")


# -- review --------------------------------------------------------------------------


async def test_agents_never_approve_and_nobody_approves_their_own(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        s = await core.submit(AGENT, title="t", diff=DIFF)
        with pytest.raises(Forbidden, match="reviewer role"):
            await core.review(AGENT, s.id, action="approve")
        own = await core.submit(REVIEWER, title="mine", diff=OTHER_DIFF)
        with pytest.raises(Forbidden, match="proposed"):
            await core.review(REVIEWER, own.id, action="approve")
        assert (
            await core.review(OTHER_REVIEWER, own.id, action="approve")
        ).status is Status.APPROVED


async def test_revise_needs_a_comment_and_reject_is_recorded(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        s = await core.submit(AGENT, title="t", diff=DIFF)
        with pytest.raises(Invalid, match="needs a comment"):
            await core.review(REVIEWER, s.id, action="revise", comment="  ")
        with pytest.raises(Invalid, match="not one of"):
            await core.review(REVIEWER, s.id, action="merge")
        r = await core.review(REVIEWER, s.id, action="revise", comment="use 3")
        assert r.status is Status.REVISION_REQUESTED
        r = await core.review(REVIEWER, s.id, action="reject", comment="no")
        assert r.status is Status.REJECTED
        assert [(x.reviewer, x.action.value) for x in r.reviews] == [
            ("alice", "revise"),
            ("alice", "reject"),
        ]
        with pytest.raises(Conflict, match="rejected"):
            await core.review(OTHER_REVIEWER, s.id, action="approve")


async def test_a_replayed_review_changes_nothing(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        s = await approved(core)
        before = await core.store.last_event_id()
        again = await core.review(REVIEWER, s.id, action="approve")
        assert again == s
        assert await core.store.last_event_id() == before


async def test_approval_stops_counting_when_the_diff_changes(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        s = await approved(core)
        assert len(s.approvals) == 1
        with pytest.raises(Forbidden, match="only the proposer"):
            await core.revise(REVIEWER, s.id, diff=OTHER_DIFF)
        before = await core.store.last_event_id()
        revised = await core.revise(AGENT, s.id, diff=OTHER_DIFF)
        assert await events_since(core, before) == ["suggest.revised"]
        assert revised.revision == 2
        assert revised.status is Status.PENDING
        assert revised.approvals == ()
        assert len(revised.reviews) == 1  # the history is kept
        with pytest.raises(Conflict, match="no approved suggestions"):
            await core.plan(REVIEWER, goal="ship")


async def test_concurrent_reviews_of_one_suggestion_do_not_lose_either(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        s = await core.submit(AGENT, title="t", diff=DIFF)
        outcomes: list[str] = []

        async def review(who: Any) -> None:
            try:
                await core.review(who, s.id, action="approve")
                outcomes.append("ok")
            except Conflict:
                outcomes.append("conflict")

        async with anyio.create_task_group() as tg:
            tg.start_soon(review, REVIEWER)
            tg.start_soon(review, OTHER_REVIEWER)
        stored = await core.get_suggestion(s.id)
        # Whoever lost the race was told so; nothing was silently overwritten.
        assert len(stored.reviews) == outcomes.count("ok")
        assert outcomes.count("ok") >= 1


# -- retries: idempotency keys ---------------------------------------------------------


async def count_suggestions(core: Storykit) -> int:
    return len(await core.list_suggestions(limit=200))


async def test_a_retried_submit_returns_the_first_result_and_writes_nothing(
    tmp_path: Path,
    db_env: dict[str, str],
) -> None:
    async with open_core(tmp_path, env=db_env) as core:
        first = await core.submit(AGENT, title="t", diff=DIFF, idempotency_key="k-1")
        reviewed = await core.review(REVIEWER, first.id, action="revise", comment="why?")
        head = await core.store.last_event_id()
        again = await core.submit(AGENT, title="t", diff=DIFF, idempotency_key="k-1")
        # The first answer, as it was given (not the suggestion as it is now).
        assert again == first and again != reviewed
        assert await core.store.last_event_id() == head
        assert await count_suggestions(core) == 1
        with pytest.raises(Invalid, match="'k-1' was already used for a different request"):
            await core.submit(AGENT, title="other", diff=DIFF, idempotency_key="k-1")
        # Keys are the agent's own: another agent's "k-1" is a new request.
        other = await core.submit(OTHER_AGENT, title="t", diff=DIFF, idempotency_key="k-1")
        assert other.id != first.id
        # Without a key, every submit is new.
        assert (await core.submit(AGENT, title="t", diff=DIFF)).id != first.id
        for bad in ("", "has space", "x" * 256, "caf\u00e9"):
            with pytest.raises(Invalid, match="Idempotency-Key must be 1 to 255 printable"):
                await core.submit(AGENT, title="t", diff=DIFF, idempotency_key=bad)
        assert await count_suggestions(core) == 3


async def test_a_failed_submit_keeps_no_key(tmp_path: Path, db_env: dict[str, str]) -> None:
    async with open_core(tmp_path, env=db_env) as core:
        with pytest.raises(Invalid):
            await core.submit(AGENT, title="", diff=DIFF, idempotency_key="k")
        s = await core.submit(AGENT, title="now right", diff=DIFF, idempotency_key="k")
        assert s.title == "now right"


async def test_concurrent_submits_with_one_key_create_one_suggestion(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    async with open_core(tmp_path, env=db_env) as core:
        head = await core.store.last_event_id()
        results: list[Suggestion] = []

        async def submit() -> None:
            results.append(await core.submit(AGENT, title="t", diff=DIFF, idempotency_key="k"))

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(submit)
        assert len({s.id for s in results}) == 1 and len(results) == 5
        assert await count_suggestions(core) == 1
        assert await events_since(core, head) == ["suggest.submitted"]


async def test_a_retried_revision_returns_the_first_result(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    async with open_core(tmp_path, env=db_env) as core:
        s = await core.submit(AGENT, title="t", diff=DIFF)
        head = await core.store.last_event_id()
        results: list[Suggestion] = []

        async def revise() -> None:
            results.append(await core.revise(AGENT, s.id, diff=OTHER_DIFF, idempotency_key="rev-1"))

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(revise)
        assert [r.revision for r in results] == [2, 2, 2]
        assert await events_since(core, head) == ["suggest.revised"]
        assert (await core.get_suggestion(s.id)).revision == 2
        again = await core.revise(AGENT, s.id, diff=OTHER_DIFF, idempotency_key="rev-1")
        assert again == results[0]
        with pytest.raises(Invalid, match="already used for a different request"):
            await core.revise(AGENT, s.id, diff=DIFF, idempotency_key="rev-1")
        t = await core.submit(AGENT, title="t2", diff=DIFF)
        with pytest.raises(Invalid, match="already used for a different request"):
            await core.revise(AGENT, t.id, diff=OTHER_DIFF, idempotency_key="rev-1")
        # The key is scoped to the route: a submit may use the same one.
        assert (await core.submit(AGENT, title="t", diff=DIFF, idempotency_key="rev-1")).id
        assert await events_since(core, head) == [
            "suggest.revised",
            "suggest.submitted",
            "suggest.submitted",
        ]


# -- retries: the policy document ---------------------------------------------------------


async def test_what_get_policies_returned_can_be_edited_and_put_back(tmp_path: Path) -> None:
    async with open_core(tmp_path, plugins={"deny": fake_plugin(FakePolicy())}) as core:
        doc = await core.get_policies()
        doc["policies"]["deny-word"]["word"] = "bump"
        new = await core.set_policies(ADMIN, doc)
        assert new["policies"] == {"deny-word": {"word": "bump"}}
        assert (await core.get_policies()) == new
        # Without "version": replaces whatever is there.
        newer = await core.set_policies(ADMIN, {"policies": {"deny-word": {"word": "x"}}})
        assert newer["policies"] == {"deny-word": {"word": "x"}}
        with pytest.raises(Invalid, match='"version" must be the version'):
            await core.set_policies(ADMIN, {"version": 3, "policies": {}})


async def test_a_stale_version_or_if_match_is_refused_and_saves_nothing(tmp_path: Path) -> None:
    async with open_core(tmp_path, plugins={"deny": fake_plugin(FakePolicy())}) as core:
        mine = await core.get_policies()
        theirs = await core.set_policies(ADMIN, {"deny-word": {"word": "theirs"}})
        head = await core.store.last_event_id()
        mine["policies"]["deny-word"]["word"] = "mine"
        with pytest.raises(PreconditionFailed, match=f"at version {theirs['version']}, not"):
            await core.set_policies(ADMIN, mine)
        with pytest.raises(PreconditionFailed):
            await core.set_policies(ADMIN, mine["policies"], if_match=[mine["version"], "0" * 16])
        assert (await core.get_policies()) == theirs
        assert await core.store.last_event_id() == head
        ok = await core.set_policies(ADMIN, mine["policies"], if_match=[theirs["version"]])
        assert ok["policies"] == {"deny-word": {"word": "mine"}}
        assert (await core.set_policies(ADMIN, {}, if_match=["*"]))["version"] == mine["version"]


async def test_concurrent_edits_of_one_version_save_only_one(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    async with open_core(tmp_path, plugins={"deny": fake_plugin(FakePolicy())}, env=db_env) as core:
        read = await core.get_policies()
        outcomes: list[str] = []

        async def edit(word: str) -> None:
            try:
                await core.set_policies(
                    ADMIN, {"deny-word": {"word": word}}, if_match=[read["version"]]
                )
                outcomes.append(word)
            except PreconditionFailed:
                outcomes.append("412")

        async with anyio.create_task_group() as tg:
            for word in ("a", "b", "c"):
                tg.start_soon(edit, word)
        [saved] = [o for o in outcomes if o != "412"]
        assert outcomes.count("412") == 2
        assert (await core.get_policies())["policies"] == {"deny-word": {"word": saved}}


# -- generate ------------------------------------------------------------------------


class ListSource:
    name = "lister"

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        assert request.progress is not None
        await request.progress({"done": 0, "total": 2})
        await request.progress({"done": 2, "total": 2})
        return [
            Draft(title="first", diff=DIFF),
            Draft(title="broken", diff="nonsense"),
        ]


class BrokenSource:
    name = "broken"

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        raise RuntimeError("boom")


class HangingSource:
    name = "hangs"

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        await anyio.sleep_forever()
        raise AssertionError


class SourcesPlugin:
    @hookimpl
    def storykit_register_sources(self, register: Any) -> None:
        register(ListSource())
        register(BrokenSource())
        register(HangingSource())


async def test_generate_runs_sources_reports_progress_and_plugin_failures(tmp_path: Path) -> None:
    async with open_core(
        tmp_path, plugins={"sources": SourcesPlugin()}, env={"STORYKIT_HOOK_TIMEOUT": "0.2"}
    ) as core:
        before = await core.store.last_event_id()
        result = await core.generate(REVIEWER)
        assert [s.title for s in result.suggestions] == ["first"]
        assert result.suggestions[0].agent == "source:lister"
        assert any("'broken'" in e and "boom" in e for e in result.errors)
        assert any("'hangs'" in e and "timed out" in e for e in result.errors)
        assert any("invalid suggestion" in e for e in result.errors)
        assert await events_since(core, before) == [
            "suggest.progress",
            "suggest.progress",
            "suggest.generated",
        ]
        failures = {(f.plugin, f.hook) for f in core.registry.failures}
        assert ("sources", "SuggestionSource.generate") in failures
        with pytest.raises(Invalid, match="unknown source"):
            await core.generate(REVIEWER, sources=["nope"])
        with pytest.raises(Invalid, match="leaves the repository"):
            await core.generate(REVIEWER, sources=["lister"], paths=["../x"])
        with pytest.raises(Forbidden):
            await core.generate(AGENT)


# -- plans and PRs -------------------------------------------------------------------


class OneVariantPlanner:
    name = "one"

    async def plan(self, goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        return [
            Variant(
                key="all",
                title=f"All for {goal}",
                suggestion_ids=tuple(s.id for s in suggestions),
                diff="".join(s.diff for s in suggestions),
                conflicts=(PlanConflict(file="x", suggestion_ids=("a", "b")),),
                risk=Risk.LOW,
            ),
            Variant(key="none", title="Nothing", suggestion_ids=(), diff=""),
        ]


class RecordingBackend:
    name = "dry-run"
    capabilities: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.requests: list[PRRequest] = []

    async def open(self, request: PRRequest) -> PRResult:
        self.requests.append(request)
        return PRResult(
            backend=self.name,
            branch=request.branch,
            diff=request.variant.diff,
            dry_run=request.dry_run,
            operations=("git switch -c " + request.branch,),
            plan_id=request.plan_id,
            variant=request.variant.key,
        )


class PlanPlugin:
    def __init__(self) -> None:
        self.backend = RecordingBackend()

    @hookimpl
    def storykit_register_planners(self, register: Any) -> None:
        register(OneVariantPlanner())

    @hookimpl
    def storykit_register_pr_backends(self, register: Any) -> None:
        register(self.backend)


async def test_plan_select_and_dry_run_pr(tmp_path: Path) -> None:
    plugin = PlanPlugin()
    async with open_core(tmp_path, plugins={"plan": plugin}, env={"PR_BACKEND": "git"}) as core:
        s = await approved(core)
        await core.submit(AGENT, title="unapproved", diff=OTHER_DIFF)
        before = await core.store.last_event_id()
        plan = await core.plan(REVIEWER, goal="ship it")
        assert [v.key for v in plan.variants] == ["all", "none"]
        assert plan.variants[0].suggestion_ids == (s.id,)
        assert plan.variants[0].planner == "one"
        selected = await core.select(REVIEWER, plan.id, variant="all")
        assert selected.selected == "all"
        with pytest.raises(Invalid, match="no variant 'nope'"):
            await core.select(REVIEWER, plan.id, variant="nope")
        result = await core.open_pr(REVIEWER, plan.id)
        assert result.dry_run is True
        assert result.branch.startswith("storykit/plan-")
        assert result.diff == DIFF
        assert plugin.backend.requests[0].variant.key == "all"
        assert await events_since(core, before) == ["plan.created", "plan.selected", "pr.dry_run"]
        assert (tmp_path / "data" / "plans" / f"{plan.id}.json").exists()
        with pytest.raises(NotConfigured, match="PR backend 'git' is not loaded"):
            await core.open_pr(REVIEWER, plan.id, dry_run=False)


class RealBackend(RecordingBackend):
    name = "real"

    def __init__(self, *, honest: bool = True) -> None:
        super().__init__()
        self.honest = honest

    async def open(self, request: PRRequest) -> PRResult:
        result = await super().open(request)
        if self.honest:
            return dataclasses.replace(result, backend=self.name)
        return dataclasses.replace(result, backend=self.name, dry_run=True)


class RealPlugin(PlanPlugin):
    def __init__(self, *, honest: bool = True) -> None:
        super().__init__()
        self.real = RealBackend(honest=honest)

    @hookimpl
    def storykit_register_pr_backends(self, register: Any) -> None:
        register(self.backend)
        register(self.real)


async def test_a_real_run_needs_a_real_pr_backend(tmp_path: Path) -> None:
    plugin = PlanPlugin()
    async with open_core(tmp_path, plugins={"plan": plugin}) as core:  # PR_BACKEND: default
        s = await approved(core)
        plan = await core.plan(REVIEWER, goal="g", suggestion_ids=[s.id])
        before = await core.store.last_event_id()
        with pytest.raises(NotConfigured) as caught:
            await core.open_pr(REVIEWER, plan.id, variant="all", dry_run=False)
        assert caught.value.detail.startswith("a real run needs a real PR backend: set PR_BACKEND")
        assert "PR_BACKEND=git" in caught.value.detail
        assert plugin.backend.requests == []  # the dry-run backend was never asked
        assert await events_since(core, before) == []


async def test_a_backend_that_only_pretends_a_real_run_is_refused(tmp_path: Path) -> None:
    plugin = RealPlugin(honest=False)
    env = {"PR_BACKEND": "real"}
    async with open_core(tmp_path, plugins={"plan": plugin}, env=env) as core:
        s = await approved(core)
        plan = await core.plan(REVIEWER, goal="g", suggestion_ids=[s.id])
        before = await core.store.last_event_id()
        with pytest.raises(PluginError, match="asked for a real run but reported a dry run"):
            await core.open_pr(REVIEWER, plan.id, variant="all", dry_run=False)
        assert await events_since(core, before) == []


async def test_the_caller_may_name_the_branch(tmp_path: Path) -> None:
    plugin = RealPlugin()
    async with open_core(tmp_path, plugins={"plan": plugin}, env={"PR_BACKEND": "real"}) as core:
        s = await approved(core)
        plan = await core.plan(REVIEWER, goal="g", suggestion_ids=[s.id])
        default = await core.open_pr(REVIEWER, plan.id, variant="all")
        assert default.branch == f"storykit/{plan.id.lower().replace('_', '-')}-all"
        assert plugin.backend.requests[-1].branch_given is False
        named = await core.open_pr(
            REVIEWER, plan.id, variant="all", dry_run=False, branch="fix/tidy-imports"
        )
        assert named.branch == "fix/tidy-imports"
        assert plugin.real.requests[-1].branch == "fix/tidy-imports"
        assert plugin.real.requests[-1].branch_given is True
        empty = await core.open_pr(REVIEWER, plan.id, variant="all", branch="")
        assert empty.branch == default.branch  # an empty field means the default name
        asked = len(plugin.backend.requests)
        for bad in ("-x", "a..b", "with space", "a~1", "end.lock", "x/", "@", "HEAD", "a@{1}"):
            with pytest.raises(Invalid, match="not a valid git branch name"):
                await core.open_pr(REVIEWER, plan.id, variant="all", branch=bad)
        assert len(plugin.backend.requests) == asked  # refused before any backend ran


NAMES = (
    "ok", "a/b", "feature/x-1_2", "storykit/plan-01j-all", "ünïcode", "@a", "a@b", "a{b}",
    "x.lockx", "refs/heads/x", "a.b", "#x", "-x", "a..b", "a b", "a~b", "a^b", "a:b", "a?b",
    "a*b", "a[b", "a\\b", "a@{b", "@", "HEAD", "a/", "/a", "a//b", ".a", "a/.b", "a.",
    "a.lock", "a.lock/b", "a/b.lock", "a\tb", "a\x7fb", "a/./b", "a/..",
)  # fmt: skip


def test_branch_names_are_checked_as_git_check_ref_format_does(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for name in NAMES:
        done = subprocess.run(
            ["git", "check-ref-format", "--branch", name],
            cwd=tmp_path,
            capture_output=True,
            check=False,
        )
        # git takes "@" as a branch name, but "@" means HEAD to every other git command.
        git_says = done.returncode == 0 and done.stdout.decode().strip() == name and name != "@"
        try:
            ours = _branch(name) == name
        except Invalid:
            ours = False
        assert ours == git_says, name


async def test_pr_refuses_suggestions_whose_approval_no_longer_counts(tmp_path: Path) -> None:
    async with open_core(tmp_path, plugins={"plan": PlanPlugin()}) as core:
        s = await approved(core)
        plan = await core.plan(REVIEWER, goal="g", suggestion_ids=[s.id])
        await core.revise(AGENT, s.id, diff=OTHER_DIFF)
        with pytest.raises(Conflict, match="no longer approved"):
            await core.open_pr(REVIEWER, plan.id, variant="all")


async def test_plan_needs_approved_suggestions_and_a_planner(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        s = await core.submit(AGENT, title="t", diff=DIFF)
        with pytest.raises(Conflict, match="not approved"):
            await core.plan(REVIEWER, goal="g", suggestion_ids=[s.id])
        await core.review(REVIEWER, s.id, action="approve")
        with pytest.raises(NotConfigured, match="planner"):
            await core.plan(REVIEWER, goal="g")
        with pytest.raises(Invalid, match="twice"):
            await core.plan(REVIEWER, goal="g", suggestion_ids=[s.id, s.id])


# -- refine ----------------------------------------------------------------------


class UpperRefiner:
    name = "upper"

    async def refine(self, suggestion: Suggestion, instructions: str) -> Any:
        from storykit.backends import Refinement

        return Refinement(rationale=suggestion.rationale.upper() + " " + instructions)


class RefinerPlugin:
    @hookimpl
    def storykit_register_refiners(self, register: Any) -> None:
        register(UpperRefiner())


async def test_refine_makes_a_new_revision_or_says_how_to_configure(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        s = await core.submit(AGENT, title="t", diff=DIFF, rationale="why")
        with pytest.raises(NotConfigured, match="STORYKIT_LLM_BASE_URL"):
            await core.refine(REVIEWER, s.id, instructions="x")
    async with open_core(tmp_path / "2", plugins={"r": RefinerPlugin()}) as core:
        s = await core.submit(AGENT, title="t", diff=DIFF, rationale="why")
        before = await core.store.last_event_id()
        refined = await core.refine(REVIEWER, s.id, instructions="please")
        assert refined.rationale == "WHY please"
        assert refined.revision == 2
        assert await events_since(core, before) == ["suggest.refined"]


# -- policies --------------------------------------------------------------------


async def test_policies_are_validated_versioned_and_applied(tmp_path: Path) -> None:
    async with open_core(tmp_path, plugins={"deny": fake_plugin(FakePolicy())}) as core:
        doc = await core.get_policies()
        assert doc["policies"] == {"deny-word": {"word": "forbidden"}}
        with pytest.raises(Invalid, match="unknown policy 'nope'"):
            await core.set_policies(ADMIN, {"nope": {}})
        with pytest.raises(Invalid, match="deny-word: word must be a non-empty string"):
            await core.set_policies(ADMIN, {"deny-word": {"word": 1}})
        with pytest.raises(Invalid, match="JSON object"):
            await core.set_policies(ADMIN, ["deny-word"])
        with pytest.raises(Forbidden):
            await core.set_policies(REVIEWER, {"deny-word": {"word": "x"}})
        assert (await core.get_policies()) == doc  # nothing half-saved
        before = await core.store.last_event_id()
        new = await core.set_policies(ADMIN, {"deny-word": {"word": "bump"}})
        assert new["version"] != doc["version"]
        assert await events_since(core, before) == ["policy.updated"]
        decision = await core.check_diff(diff=make_diff("a.py", "", "bump = 1\n"))
        assert decision.outcome is Outcome.DENY
        assert decision.policy_version == new["version"]
        assert await core.store.last_event_id() == before + 1  # checking stores nothing


class ExplodingPolicy(FakePolicy):
    async def check(self, subject: PolicySubject, config: Any) -> Sequence[Finding]:
        raise ValueError("bad day")


class ExplodingPlugin:
    @hookimpl
    def storykit_register_policies(self, register: Any) -> None:
        register(ExplodingPolicy(name="explodes"))


async def test_a_failing_policy_is_reported_and_makes_risk_unknown(tmp_path: Path) -> None:
    async with open_core(tmp_path, plugins={"boom": ExplodingPlugin()}) as core:
        s = await core.submit(AGENT, title="t", diff=DIFF)
        assert s.risk is Risk.UNKNOWN
        assert s.status is Status.PENDING
        assert [(f.rule, f.policy) for f in s.findings] == [("policy-error", "explodes")]
        assert "'boom'" in s.findings[0].message and "bad day" in s.findings[0].message


# -- observers and registration ------------------------------------------------------


class Observer:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.done = anyio.Event()

    @hookimpl
    async def storykit_on_event(self, event: Any) -> None:
        self.seen.append(event.type)
        if event.type == "suggest.reviewed":
            self.done.set()


class SyncObserver:
    def __init__(self, expect: int = 2) -> None:
        self.seen: list[int] = []
        self.expect = expect
        self.done = anyio.Event()

    @hookimpl
    def storykit_on_event(self, event: Any) -> None:
        self.seen.append(event.id)
        if len(self.seen) >= self.expect:
            self.done.set()
        raise RuntimeError("observers may fail")


async def test_event_observers_see_every_event_in_order(tmp_path: Path) -> None:
    obs, sync = Observer(), SyncObserver()
    async with open_core(tmp_path, plugins={"obs": obs, "sync": sync}) as core:
        s = await core.submit(AGENT, title="t", diff=DIFF)
        await core.review(REVIEWER, s.id, action="approve")
        with anyio.fail_after(10):  # each observer runs its own batches: wait for both
            await obs.done.wait()
            await sync.done.wait()
        assert obs.seen == ["suggest.submitted", "suggest.reviewed"]
        assert sync.seen == sorted(sync.seen) and len(sync.seen) == 2
        assert ("sync", "storykit_on_event") in {(f.plugin, f.hook) for f in core.registry.failures}


class BadRegistration:
    @hookimpl
    def storykit_register_sources(self, register: Any) -> None:
        register(object())


async def test_a_plugin_that_fails_to_register_is_reported_not_fatal(tmp_path: Path) -> None:
    async with open_core(tmp_path, plugins={"bad": BadRegistration()}) as core:
        assert core.registry.sources == {}
        [failure] = core.registry.failures
        assert (failure.plugin, failure.hook) == ("bad", "storykit_register_sources")
        assert "has no name" in failure.message


async def test_plugin_error_names_plugin_and_hook(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:

        async def fail() -> None:
            raise KeyError("x")

        with pytest.raises(PluginError) as info:
            await core.registry.call("someplugin", "some_hook", fail)
        assert info.value.plugin == "someplugin" and info.value.hook == "some_hook"
        assert "someplugin" in str(info.value) and "some_hook" in str(info.value)


class SlowRefiner(UpperRefiner):
    name = "slow"

    def __init__(self, timeout: float | None) -> None:
        if timeout is not None:
            self.timeout = timeout

    async def refine(self, suggestion: Suggestion, instructions: str) -> Any:
        await anyio.sleep(0.3)  # a slow model, not synchronisation
        return await super().refine(suggestion, instructions)


@pytest.mark.parametrize("own_timeout", [None, 1.0])
async def test_a_backend_may_ask_for_more_time_than_the_hook_timeout(
    tmp_path: Path, own_timeout: float | None
) -> None:
    class Plugin:
        @hookimpl
        def storykit_register_refiners(self, register: Any) -> None:
            register(SlowRefiner(own_timeout))

    env = {"STORYKIT_HOOK_TIMEOUT": "0.05"}
    async with open_core(tmp_path, plugins={"slow": Plugin()}, env=env) as core:
        s = await core.submit(AGENT, title="t", diff=DIFF, rationale="why")
        if own_timeout is None:
            with pytest.raises(PluginError, match="timed out"):
                await core.refine(REVIEWER, s.id)
        else:
            assert (await core.refine(REVIEWER, s.id)).revision == 2


# -- hostile values --------------------------------------------------------------------

BAD = "\ud800"  # an unpaired surrogate: JSON can carry it, UTF-8 (and so SQLite) cannot


async def test_text_utf8_cannot_hold_and_ids_beyond_64_bits_are_invalid(tmp_path: Path) -> None:
    async with open_core(
        tmp_path, plugins={"deny": fake_plugin(FakePolicy()), "r": RefinerPlugin()}
    ) as core:
        s = await core.submit(AGENT, title="t", diff=DIFF)
        before = (await core.read_events(), await core.list_suggestions())
        bad_diff = make_diff("pkg/mod.py", "a = 1\n", f"a = '{BAD}'\n")
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: core.submit(AGENT, title=BAD, diff=DIFF),
            lambda: core.submit(AGENT, title="t", diff=bad_diff),
            lambda: core.submit(AGENT, title="t", diff=DIFF, rationale=BAD),
            lambda: core.revise(AGENT, s.id, diff=DIFF, title=BAD),
            lambda: core.review(REVIEWER, s.id, action="revise", comment=BAD),
            lambda: core.refine(REVIEWER, s.id, instructions=BAD),
            lambda: core.plan(REVIEWER, goal=BAD),
            lambda: core.generate(REVIEWER, paths=[BAD]),
            lambda: core.set_policies(ADMIN, {"deny-word": {"word": BAD}}),
            lambda: core.check_diff(diff=bad_diff),
            lambda: core.check_diff(diff=DIFF, rationale=BAD),
            lambda: core.list_suggestions(SuggestionFilter.parse({"source": BAD})),
            lambda: core.list_suggestions(SuggestionFilter.parse({"agent": BAD})),
            lambda: core.read_events(after=2**64),
        ]
        for call in calls:
            with pytest.raises(Invalid):
                await call()
        assert (await core.read_events(), await core.list_suggestions()) == before
        assert await core.read_events(after=2**63 - 1) == []


# -- CPU-heavy work off the event loop ----------------------------------------------------

BIG_DIFF = make_diff("pkg/big.py", "", "x = 1\n" * 20_000)  # well past OFFLOAD_CHARS


async def test_a_big_diff_is_parsed_while_the_event_loop_serves_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parse waits until another task on the event loop has answered a read. Were it
    # parsing on the loop, that task could never run (the wait would time out and fail).
    import storykit.diffs

    parsing, served = threading.Event(), threading.Event()
    real_patch_set = PatchSet  # what storykit.diffs imported

    def patch_set(diff: str) -> Any:
        if len(diff) > 100_000:
            parsing.set()
            assert served.wait(timeout=30), "the event loop was blocked during the parse"
        return real_patch_set(diff)

    monkeypatch.setattr(storykit.diffs, "PatchSet", patch_set)
    async with open_core(tmp_path, plugins={"deny": fake_plugin(FakePolicy())}) as core:

        async def another_request() -> None:
            assert await anyio.to_thread.run_sync(parsing.wait, 30), "no parse started"
            assert await core.list_suggestions() == []  # answered while the parse is held
            served.set()

        for use_case in (
            lambda: core.check_diff(diff=BIG_DIFF),
            lambda: core.submit(AGENT, title="big", diff=BIG_DIFF),
        ):
            parsing.clear()
            served.clear()
            async with anyio.create_task_group() as tg:
                tg.start_soon(another_request)
                await use_case()
        [s] = await core.list_suggestions()
        assert s.files == ("pkg/big.py",) and s.diff == BIG_DIFF


async def test_a_big_write_is_serialised_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storykit.store.sqlite

    on_loop: list[bool] = []
    real_prepare = batch_prepare

    def prepare(*args: Any, **kwargs: Any) -> Any:
        on_loop.append(threading.get_ident() == loop_thread)
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(storykit.store.sqlite, "prepare", prepare)
    loop_thread = threading.get_ident()
    async with open_core(tmp_path) as core:
        await core.submit(AGENT, title="small", diff=DIFF)
        await core.submit(AGENT, title="big", diff=BIG_DIFF)
    assert on_loop == [True, False]
