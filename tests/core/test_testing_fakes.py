"""``storykit.testing``: the fakes and the wait helper plugin authors (and we) test with."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from storykit import Draft
from storykit.models import Status
from storykit.testing import (
    AGENT,
    OTHER_REVIEWER,
    REVIEWER,
    FakeBackend,
    FakePlanner,
    FakePolicy,
    FakeRefiner,
    FakeSource,
    fake_plugin,
    make_diff,
    open_core,
    wait_until,
)

DIFF = make_diff("pkg/mod.py", "a = 1\n", "a = 2\n")


@pytest.mark.anyio
async def test_one_fake_of_each_kind_through_a_whole_review(tmp_path: Path) -> None:
    source = FakeSource(drafts=[Draft(title="Bump a", diff=DIFF)])
    planner, backend = FakePlanner(), FakeBackend()
    refiner = FakeRefiner(diff=make_diff("pkg/mod.py", "a = 1\n", "a = 3\n"))
    plugin = fake_plugin(source, FakePolicy(), planner, backend, refiner)
    env = {"PR_BACKEND": "fake-pr"}
    async with open_core(tmp_path, plugins={"fakes": plugin}, env=env) as core:
        result = await core.generate(REVIEWER)
        assert [s.title for s in result.suggestions] == ["Bump a"]
        assert source.requests[0].repo_path == core.settings.repo_path

        blocked = await core.submit(AGENT, title="t", diff=make_diff("x.py", "", "forbidden\n"))
        assert blocked.status is Status.BLOCKED
        assert [f.rule for f in blocked.findings] == ["word"]

        s = result.suggestions[0]
        refined = await core.refine(REVIEWER, s.id, instructions="use three")
        assert refiner.calls == [(s.id, "use three")]
        assert "a = 3" in refined.diff
        await core.review(OTHER_REVIEWER, s.id, action="approve")
        plan = await core.plan(REVIEWER, goal="ship it")
        assert planner.goals == ["ship it"]
        assert [v.key for v in plan.variants] == ["all"]
        await core.select(REVIEWER, plan.id, variant="all")
        pr = await core.open_pr(REVIEWER, plan.id, dry_run=False)  # dry runs use dry-run
        assert not pr.dry_run and pr.url == "https://forge.invalid/pulls/1"
        assert backend.requests[0].variant.suggestion_ids == (s.id,)


def test_fake_plugin_refuses_what_is_no_backend() -> None:
    with pytest.raises(TypeError, match="no source, policy, planner, PR backend or refiner"):
        fake_plugin(object())


def test_wait_until_returns_once_the_condition_holds_and_names_what_it_gave_up_on() -> None:
    done = threading.Event()
    threading.Timer(0.01, done.set).start()
    wait_until(done.is_set, what="the timer")
    with pytest.raises(AssertionError, match=r"gave up after 0\.1s waiting for the moon"):
        wait_until(lambda: False, what="the moon", deadline=0.1)
