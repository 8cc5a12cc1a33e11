"""The shared reply shapes (storykit.replies), the filter value (storykit.filters) and the
run id a generate run's events carry."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from storykit import replies
from storykit.backends import Draft, GenerateRequest
from storykit.errors import Invalid
from storykit.filters import KEYS, MAX_NAME, SuggestionFilter
from storykit.hookspecs import hookimpl
from storykit.ids import new_id
from storykit.models import Risk, Status
from storykit.testing import AGENT, REVIEWER, make_diff, open_core

pytestmark = pytest.mark.anyio


# -- the filter ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ({}, SuggestionFilter()),
        ({"status": "pending"}, SuggestionFilter(status=Status.PENDING)),
        ({"risk": "high", "source": "ruff"}, SuggestionFilter(risk=Risk.HIGH, source="ruff")),
        ({"agent": "ci-bot", "status": None}, SuggestionFilter(agent="ci-bot")),
        ({"status": "", "source": "", "agent": "", "risk": ""}, SuggestionFilter()),
        # Paging options and the like beside the filter are the caller's, not the filter's.
        ({"after": "x", "limit": 5, "risk": "low"}, SuggestionFilter(risk=Risk.LOW)),
    ],
)
def test_a_filter_parses_what_a_query_string_or_the_cli_gives(
    given: dict[str, Any], parsed: SuggestionFilter
) -> None:
    assert SuggestionFilter.parse(given) == parsed


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"status": "done"}, "status 'done' is not one of: pending, approved"),
        ({"risk": "HIGH"}, "risk 'HIGH' is not one of: low, medium, high, unknown"),
        ({"source": 7}, "source must be a string"),
        ({"agent": "x" * (MAX_NAME + 1)}, "agent is too long"),
        ({"agent": "a\x00b"}, "agent contains a NUL character"),
        ({"source": "\ud800"}, "source is not valid Unicode text"),
    ],
)
def test_a_bad_filter_value_is_invalid_naming_its_key(given: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        SuggestionFilter.parse(given)


def test_params_are_the_keys_that_are_set_and_parse_back() -> None:
    assert KEYS == ("status", "source", "agent", "risk")
    full = SuggestionFilter(status=Status.APPROVED, source="api", agent="bot", risk=Risk.LOW)
    assert full.params() == {"status": "approved", "source": "api", "agent": "bot", "risk": "low"}
    assert SuggestionFilter(agent="bot").params() == {"agent": "bot"}
    assert SuggestionFilter().params() == {}
    assert SuggestionFilter.parse(full.params()) == full


async def test_the_core_lists_what_the_filter_matches(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        mine = await core.submit(AGENT, title="t", diff=make_diff("a.py", "a\n", "b\n"))
        assert await core.list_suggestions(SuggestionFilter(agent="bot")) == [mine]
        assert await core.list_suggestions(SuggestionFilter(agent="other")) == []
        assert await core.list_suggestions(SuggestionFilter(status=Status.APPROVED)) == []
        assert await core.list_suggestions() == [mine]


# -- the shapes ---------------------------------------------------------------------


async def test_pages_say_where_the_next_one_starts_and_carry_the_head(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        made = [
            await core.submit(AGENT, title=f"t{i}", diff=make_diff("a.py", "a\n", f"{i}\n"))
            for i in range(3)
        ]
        head = await core.event_head()
        full = await replies.suggestion_page(core, None, after=None, limit=2)
        assert [s["id"] for s in full["items"]] == [made[2].id, made[1].id]
        assert full["next_after"] == made[1].id and full["head"] == head
        rest = await replies.suggestion_page(core, None, after=full["next_after"], limit=2)
        assert [s["id"] for s in rest["items"]] == [made[0].id]
        assert rest["next_after"] is None
        assert rest == replies.page([made[0]], limit=2, head=head)
        assert await replies.plan_page(core, after=None, limit=50) == {
            "items": [],
            "next_after": None,
            "head": head,
        }

        log = await replies.event_log(core, after=1, limit=1)
        assert [e["id"] for e in log["items"]] == [2]
        assert log["last_id"] == 2 and log["head"] == head
        # An empty page starts the next one where this one did.
        assert await replies.event_log(core, after=head, limit=10) == {
            "items": [],
            "last_id": head,
            "head": head,
        }


async def test_the_plugins_reply_names_the_version_plugins_errors_and_backend(
    tmp_path: Path,
) -> None:
    import storykit

    async with open_core(tmp_path) as core:
        reply = replies.plugins_reply(core)
    assert reply["version"] == storykit.__version__
    assert reply["plugins"] == core.plugins()
    assert reply["errors"] == [] and reply["pr_backend"] == core.settings.pr_backend


# -- a generate run's id ------------------------------------------------------------


class ClaimingSource:
    """Reports progress with a ``run`` of its own, which must not replace the real one."""

    name = "claims"

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        assert request.progress is not None
        await request.progress({"done": 1, "total": 1, "run": "run_not_mine"})
        return [Draft(title="t", diff=make_diff("a.py", "a\n", "b\n"))]


class ClaimingPlugin:
    @hookimpl
    def storykit_register_sources(self, register: Any) -> None:
        register(ClaimingSource())


async def test_every_event_of_a_run_carries_its_id(tmp_path: Path) -> None:
    async with open_core(tmp_path, plugins={"claims": ClaimingPlugin()}) as core:
        run = new_id("run")
        before = await core.event_head()
        result = await core.generate(REVIEWER, run=run)
        assert result.run == run
        events = await core.read_events(after=before)
        assert [(e.type, e.data["run"]) for e in events] == [
            ("suggest.progress", run),
            ("suggest.generated", run),
        ]
        assert events[0].data["source"] == "claims"

        chosen = await core.generate(REVIEWER)  # none given: a new one
        assert chosen.run.startswith("run_") and chosen.run != run
        assert replies.generate_reply(chosen) == {
            "items": [],
            "count": 0,
            "unchanged": 1,  # the same proposal as the first run's, still open
            "superseded": [],
            "errors": [],
        }
        head = await core.event_head()
        for bad in ("x", "sug_" + run[4:]):
            with pytest.raises(Invalid, match="run"):
                await core.generate(REVIEWER, run=bad)
        assert await core.event_head() == head  # refused before anything ran
