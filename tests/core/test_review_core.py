"""The reviewer's loop through the core on a real database (SQLite and PostgreSQL): line
comments, kept revisions and the interdiff, generate without duplicates, superseded
suggestions, and bulk decisions."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from storykit.backends import Draft, GenerateRequest
from storykit.errors import Conflict, Invalid, NotFound
from storykit.filters import SuggestionFilter
from storykit.hookspecs import hookimpl
from storykit.models import Side, Status
from storykit.services import Storykit
from storykit.store._pg_schema import SCHEMA_VERSION as PG_VERSION
from storykit.store._schema import SCHEMA_VERSION
from storykit.testing import (
    AGENT,
    OTHER_REVIEWER,
    REVIEWER,
    FakePolicy,
    fake_plugin,
    make_diff,
    open_core,
)

pytestmark = pytest.mark.anyio

BASE = "".join(f"line {n}\n" for n in range(1, 41))
ONE = BASE.replace("line 10\n", "ten\n")
TWO = BASE.replace("line 10\n", "TEN\n").replace("line 3\n", "three\n")
DIFF_1 = make_diff("m.py", BASE, ONE)
DIFF_2 = make_diff("m.py", BASE, TWO)


async def types_since(core: Storykit, after: int) -> list[str]:
    return [e.type for e in await core.read_events(after=after)]


# -- line comments ---------------------------------------------------------------------
async def test_a_revise_request_points_at_lines_and_the_agent_reads_them(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    async with open_core(tmp_path, env=db_env) as core:
        s = await core.submit(AGENT, title="Rename", diff=DIFF_1)
        before = await core.event_head()
        notes = [
            {"file": "m.py", "line": 10, "side": "new", "body": "call it 'ten_' instead"},
            {"file": "m.py", "line": 13, "side": "old", "body": "keep this one"},
        ]
        # Line comments alone say what to change.
        asked = await core.review(REVIEWER, s.id, action="revise", comments=notes)
        assert asked.status is Status.REVISION_REQUESTED
        [review] = (await core.get_suggestion(s.id)).reviews
        assert [(c.file, c.line, c.side, c.body, c.current_line) for c in review.comments] == [
            ("m.py", 10, Side.NEW, "call it 'ten_' instead", 10),
            ("m.py", 13, Side.OLD, "keep this one", 13),
        ]
        assert review.revision == 1
        [event] = await core.read_events(after=before)
        assert event.data["comments"] == 2
        # A retry is no second decision.
        await core.review(REVIEWER, s.id, action="revise", comments=notes)
        assert await types_since(core, before) == ["suggest.reviewed"]


async def test_a_comment_on_a_line_the_diff_does_not_show_is_refused_storing_nothing(
    tmp_path: Path,
) -> None:
    async with open_core(tmp_path) as core:
        s = await core.submit(AGENT, title="Rename", diff=DIFF_1)
        before = await core.event_head()
        bad = [{"file": "m.py", "line": 30, "body": "?"}]
        with pytest.raises(Invalid, match=r"line 30 of m\.py is not in the diff on the new side"):
            await core.review(REVIEWER, s.id, action="approve", comments=bad)
        assert await core.event_head() == before
        assert (await core.get_suggestion(s.id)).reviews == ()


# -- revisions and the interdiff ---------------------------------------------------------
async def test_every_revision_is_kept_and_the_interdiff_is_what_changed(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    async with open_core(tmp_path, env=db_env) as core:
        s = await core.submit(AGENT, title="Rename", diff=DIFF_1, rationale="first")
        notes = [
            {"file": "m.py", "line": 10, "body": "not quite"},
            {"file": "m.py", "line": 12, "body": "fine as is"},
        ]
        await core.review(REVIEWER, s.id, action="revise", comments=notes)
        revised = await core.revise(AGENT, s.id, diff=DIFF_2, rationale="second")
        assert revised.revision == 2

        revisions = await core.list_revisions(s.id)
        assert [(r.number, r.diff, r.rationale, r.by, r.via) for r in revisions] == [
            (1, DIFF_1, "first", "bot", "suggest.submitted"),
            (2, DIFF_2, "second", "bot", "suggest.revised"),
        ]
        assert (await core.get_revision(s.id, 1)).diff == DIFF_1
        with pytest.raises(NotFound, match="no revision 3"):
            await core.get_revision(s.id, 3)

        changes = await core.interdiff(s.id)  # default: from the one before to the current
        assert (changes["from"], changes["to"], changes["files"]) == (1, 2, ["m.py"])
        body = [x for x in changes["diff"].splitlines() if x[:1] in "+-" and x[:3] not in "+++---"]
        assert body == ["-line 3", "+three", "-ten", "+TEN"]
        assert (await core.interdiff(s.id, start=2, end=2))["diff"] == ""
        with pytest.raises(Invalid, match="revision number"):
            await core.interdiff(s.id, start=0, end=2)

        # The comment on the line revision 2 changed is outdated; the other moved with it.
        [review] = (await core.get_suggestion(s.id)).reviews
        assert [(c.line, c.outdated, c.current_line) for c in review.comments] == [
            (10, True, None),
            (12, False, 12),
        ]


async def test_a_suggestion_stored_before_revisions_were_kept_lists_its_current_one(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    """The migration adds the table; older suggestions have no rows, and the core reads
    their current revision from the suggestion (SQLite and PostgreSQL alike)."""
    async with open_core(tmp_path, env=db_env) as core:
        s = await core.submit(AGENT, title="Old", diff=DIFF_1)
        await core.revise(AGENT, s.id, diff=DIFF_2)
    _downgrade(tmp_path, db_env)  # as the previous version left it: no revisions table

    async with open_core(tmp_path, env=db_env) as core:
        [current] = await core.list_revisions(s.id)
        assert (current.number, current.diff) == (2, DIFF_2)
        with pytest.raises(NotFound, match="stored before storykit kept revisions"):
            await core.get_revision(s.id, 1)
        await core.revise(AGENT, s.id, diff=DIFF_1)
        # The one it replaces is kept with it (what is known of it), and all from here on.
        assert [r.number for r in await core.list_revisions(s.id)] == [2, 3]
        assert (await core.interdiff(s.id, start=2, end=3))["files"] == ["m.py"]


def _downgrade(tmp_path: Path, db_env: dict[str, str]) -> None:
    if "DATABASE_URL" in db_env:
        with psycopg.connect(db_env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("DROP TABLE suggestion_revisions")
            conn.execute("UPDATE schema_version SET version = %s", (PG_VERSION - 1,))
        return
    import sqlite3

    lite = sqlite3.connect(tmp_path / "data" / "storykit.db")
    try:
        lite.execute("DROP TABLE suggestion_revisions")
        lite.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION - 1,))
        lite.commit()
    finally:
        lite.close()


# -- generate: no duplicates, superseded -----------------------------------------------------
@dataclasses.dataclass
class Proposals:
    name: str = "fixer"
    drafts: list[Draft] = dataclasses.field(default_factory=list)

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        return list(self.drafts)


class ProposalsPlugin:
    def __init__(self, source: Proposals) -> None:
        self.source = source

    @hookimpl
    def storykit_register_sources(self, register: Any) -> None:
        register(self.source)


A_1 = make_diff("a.py", "x = 1\n", "x = 2\n")
A_2 = make_diff("a.py", "x = 1\n", "x = 3\n")
B_1 = make_diff("b.py", "y = 1\n", "y = 2\n")


async def test_generate_again_stores_nothing_new_and_supersedes_what_changed(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    source = Proposals(drafts=[Draft(title="a", diff=A_1), Draft(title="b", diff=B_1)])
    async with open_core(tmp_path, env=db_env, plugins={"p": ProposalsPlugin(source)}) as core:
        first = await core.generate(REVIEWER)
        a, b = first.suggestions
        assert (len(first.suggestions), first.unchanged) == (2, ())

        before = await core.event_head()
        again = await core.generate(REVIEWER)
        assert (again.suggestions, set(again.unchanged), again.superseded) == ((), {a.id, b.id}, ())
        [generated] = await core.read_events(after=before)
        assert (generated.data["count"], generated.data["unchanged"]) == (0, 2)
        assert len(await core.list_suggestions()) == 2

        source.drafts = [Draft(title="a, better", diff=A_2), Draft(title="b", diff=B_1)]
        before = await core.event_head()
        third = await core.generate(REVIEWER)
        [a2] = third.suggestions
        assert (third.unchanged, third.superseded) == ((b.id,), (a.id,))
        assert await types_since(core, before) == ["suggest.generated", "suggest.superseded"]
        [_, superseded] = await core.read_events(after=before)
        assert superseded.data["id"] == a.id and superseded.data["superseded_by"] == a2.id
        old = await core.get_suggestion(a.id)
        assert (old.status, old.superseded_by) == (Status.SUPERSEDED, a2.id)
        with pytest.raises(Conflict, match="superseded"):
            await core.review(REVIEWER, a.id, action="approve")
        await core.refresh_gauges()
        gauge = core.metrics.suggestions.labels(status="superseded")
        assert gauge._value.get() == 1
        where = SuggestionFilter.parse({"status": "superseded"})
        assert [s.id for s in await core.list_suggestions(where)] == [a.id]


async def test_an_approved_suggestion_is_never_superseded_nor_proposed_twice(
    tmp_path: Path,
) -> None:
    source = Proposals(drafts=[Draft(title="a", diff=A_1)])
    async with open_core(tmp_path, plugins={"p": ProposalsPlugin(source)}) as core:
        [a] = (await core.generate(REVIEWER)).suggestions
        await core.review(REVIEWER, a.id, action="approve")
        assert (await core.generate(REVIEWER)).unchanged == (a.id,)
        source.drafts = [Draft(title="a again", diff=A_2)]
        third = await core.generate(REVIEWER)
        assert (len(third.suggestions), third.superseded) == (1, ())
        assert (await core.get_suggestion(a.id)).status is Status.APPROVED


# -- bulk decisions ----------------------------------------------------------------------------
async def test_a_bulk_decision_reports_each_item_and_writes_one_event_per_success(
    tmp_path: Path,
) -> None:
    policy = {"deny": fake_plugin(FakePolicy())}
    async with open_core(tmp_path, plugins=policy) as core:
        ok_1 = await core.submit(AGENT, title="one", diff=A_1)
        ok_2 = await core.submit(AGENT, title="two", diff=B_1)
        blocked = await core.submit(AGENT, title="bad", diff=make_diff("c.py", "", "forbidden\n"))
        mine = await core.submit(REVIEWER, title="mine", diff=A_2)
        missing = "sug_01JD0000000000000000000000"
        before = await core.event_head()
        ids = [ok_1.id, blocked.id, mine.id, missing, ok_2.id]
        items = await core.review_many(REVIEWER, ids=ids, action="approve", comment="batch")
        assert [(i.id, i.ok, i.status) for i in items] == [
            (ok_1.id, True, "approved"),
            (blocked.id, False, None),
            (mine.id, False, None),
            (missing, False, None),
            (ok_2.id, True, "approved"),
        ]
        problems = {i.id: i.problem for i in items if i.problem}
        assert problems[blocked.id]["status"] == 409 and "blocked" in problems[blocked.id]["detail"]
        assert problems[mine.id]["status"] == 403
        assert "own" in problems[mine.id]["detail"]
        assert problems[missing]["status"] == 404
        assert await types_since(core, before) == ["suggest.reviewed", "suggest.reviewed"]
        # Again: each is a replay, so nothing new happens.
        await core.review_many(REVIEWER, ids=ids, action="approve", comment="batch")
        assert len(await types_since(core, before)) == 2


async def test_a_bulk_decision_by_filter_takes_what_matches(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        one = await core.submit(AGENT, title="one", diff=A_1)
        two = await core.submit(AGENT, title="two", diff=B_1)
        await core.review(OTHER_REVIEWER, two.id, action="approve")
        where = SuggestionFilter.parse({"status": "pending"})
        items = await core.review_many(REVIEWER, where=where, action="reject", comment="no")
        assert [(i.id, i.status) for i in items] == [(one.id, "rejected")]
        with pytest.raises(Invalid, match="ids or a filter"):
            await core.review_many(REVIEWER, action="reject")
        with pytest.raises(Invalid, match="ids or a filter"):
            await core.review_many(REVIEWER, ids=[one.id], where=where, action="reject")
        with pytest.raises(Invalid, match="action"):
            await core.review_many(REVIEWER, ids=[one.id], action="merge")
