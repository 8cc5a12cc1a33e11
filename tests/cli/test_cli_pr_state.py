"""``storykit plan show``: the pull requests opened from a plan, with what became of them."""

from __future__ import annotations

from pathlib import Path

import anyio
from cli_helpers import ok_json, storykit

from storykit.models import Checks, Plan, PRState, PullRequest, Variant
from storykit.store.sqlite import SqliteStore

PLAN_ID = "plan_01HF3Z8Q5N2D6K9V0W4X7Y1Z3A"


def seed(data_dir: Path) -> None:
    """What storykit holds once a webhook said the plan's PR merged with its checks passing."""
    plan = Plan(
        id=PLAN_ID,
        goal="Tidy the code",
        variants=(Variant(key="all", title="All", suggestion_ids=()),),
        created_by="carol",
        pull_requests=(
            PullRequest(
                backend="github",
                repository="octo/hello",
                number=42,
                url="https://github.com/octo/hello/pull/42",
                branch="storykit/plan-7-all",
                variant="all",
                state=PRState.MERGED,
                checks=Checks.PASSING,
                check_runs={"test": Checks.PASSING},
            ),
        ),
    )

    async def write() -> None:
        async with SqliteStore(data_dir / "storykit.db") as store:
            await store.write("pr.updated", {"plan_id": plan.id}, plans=[plan])

    data_dir.mkdir(parents=True, exist_ok=True)
    anyio.run(write)


def test_plan_show_lists_its_pull_requests_and_their_state(local_env: Path) -> None:
    seed(local_env)
    shown = storykit("plan", "show", PLAN_ID)
    assert shown.exit_code == 0, shown.output
    [row] = [line for line in shown.stdout.splitlines() if line.startswith("#42")]
    assert row.split()[:4] == ["#42", "merged", "passing", "all"]
    assert row.endswith("https://github.com/octo/hello/pull/42")
    [pr] = ok_json("plan", "show", PLAN_ID)["pull_requests"]
    assert (pr["state"], pr["checks"], pr["check_runs"]) == (
        "merged",
        "passing",
        {"test": "passing"},
    )
