"""The review rules as tables: no database, no event loop (storykit.rules)."""

from __future__ import annotations

import dataclasses

import pytest

from storykit import rules
from storykit.auth import Principal, Role
from storykit.errors import Conflict, Forbidden, Invalid, StorykitError
from storykit.models import Action, LineComment, Review, Status, Suggestion

AGENT = Principal(name="bot", role=Role.AGENT)
ALICE = Principal(name="alice", role=Role.REVIEWER)
ADMIN = Principal(name="root", role=Role.ADMIN)


def suggestion(**changes: object) -> Suggestion:
    base = Suggestion(
        id="sug_1", source="api", agent="bot", title="t", diff="d", diff_hash="h1", files=("x",)
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def approval(diff_hash: str = "h1", revision: int = 1, reviewer: str = "alice") -> Review:
    return Review(reviewer=reviewer, action=Action.APPROVE, diff_hash=diff_hash, revision=revision)


# who may decide what ------------------------------------------------------------------
DECISIONS: list[tuple[Principal, Status, Action, str, type[StorykitError] | None]] = [
    # actor, status, action, comment, refused with
    (AGENT, Status.PENDING, Action.APPROVE, "", Forbidden),  # agents never decide
    (AGENT, Status.PENDING, Action.REJECT, "no", Forbidden),
    (ALICE, Status.PENDING, Action.APPROVE, "", None),
    (ADMIN, Status.PENDING, Action.APPROVE, "", None),
    (ALICE, Status.PENDING, Action.REVISE, "", Invalid),  # a revise says what to change
    (ALICE, Status.PENDING, Action.REVISE, "  ", Invalid),
    (ALICE, Status.PENDING, Action.REVISE, "rename it", None),
    (ALICE, Status.BLOCKED, Action.APPROVE, "", Conflict),  # policy said no
    (ALICE, Status.BLOCKED, Action.REVISE, "fix it", None),
    (ALICE, Status.BLOCKED, Action.REJECT, "", None),
    (ALICE, Status.REJECTED, Action.APPROVE, "", Conflict),
    (ALICE, Status.APPROVED, Action.REJECT, "changed my mind", None),
    (ALICE, Status.REVISION_REQUESTED, Action.APPROVE, "", None),
    (ALICE, Status.SUPERSEDED, Action.APPROVE, "", Conflict),  # its source replaced it
    (ALICE, Status.SUPERSEDED, Action.REVISE, "fix it", Conflict),
    (ALICE, Status.SUPERSEDED, Action.REJECT, "", None),  # closing it for good is fine
]


@pytest.mark.parametrize(("actor", "status", "action", "comment", "refused"), DECISIONS)
def test_who_may_decide_what(
    actor: Principal,
    status: Status,
    action: Action,
    comment: str,
    refused: type[StorykitError] | None,
) -> None:
    s = suggestion(status=status)
    if refused is None:
        rules.check_decision(actor, s, action, comment)
    else:
        with pytest.raises(refused):
            rules.check_decision(actor, s, action, comment)


def test_nobody_approves_their_own_proposal_whatever_their_role() -> None:
    for me in (ALICE, ADMIN):
        mine = suggestion(agent=me.name)
        with pytest.raises(Forbidden, match="nobody approves their own proposal"):
            rules.check_decision(me, mine, Action.APPROVE, "")
        rules.check_decision(me, mine, Action.REJECT, "")  # withdrawing one's own is fine


# what a decision does --------------------------------------------------------------------
AFTER = [
    (Status.PENDING, Action.APPROVE, Status.APPROVED),
    (Status.PENDING, Action.REVISE, Status.REVISION_REQUESTED),
    (Status.PENDING, Action.REJECT, Status.REJECTED),
    (Status.APPROVED, Action.REJECT, Status.REJECTED),
    (Status.REVISION_REQUESTED, Action.APPROVE, Status.APPROVED),
    (Status.BLOCKED, Action.REVISE, Status.BLOCKED),  # only a new revision unblocks
    (Status.BLOCKED, Action.REJECT, Status.REJECTED),
]


@pytest.mark.parametrize(("before", "action", "after"), AFTER)
def test_the_status_a_decision_leaves(before: Status, action: Action, after: Status) -> None:
    assert rules.status_after(before, action) is after


@pytest.mark.parametrize(("blocked", "status"), [(True, Status.BLOCKED), (False, Status.PENDING)])
def test_a_new_diff_starts_over(blocked: bool, status: Status) -> None:
    assert rules.status_for_new_diff(blocked) is status


# when an approval counts -----------------------------------------------------------------
COUNTS = [
    (Status.APPROVED, (approval(),), "h1", True),
    (Status.APPROVED, (approval(diff_hash="h0"),), "h1", False),  # given to another diff
    (Status.APPROVED, (), "h1", False),
    (Status.PENDING, (approval(),), "h1", False),  # a same-diff revision reset it
    (Status.REJECTED, (approval(),), "h1", False),
]


@pytest.mark.parametrize(("status", "reviews", "diff_hash", "counts"), COUNTS)
def test_approved_for_its_current_diff(
    status: Status, reviews: tuple[Review, ...], diff_hash: str, counts: bool
) -> None:
    s = suggestion(status=status, reviews=reviews, diff_hash=diff_hash)
    assert rules.approved_for_current_diff(s) is counts


# replays -------------------------------------------------------------------------------
def test_a_replay_is_the_same_decision_on_the_same_revision_only() -> None:
    last = approval(revision=1)
    s = suggestion(status=Status.APPROVED, reviews=(last,), revision=1)
    assert rules.is_replay(ALICE, s, Action.APPROVE, "")
    assert not rules.is_replay(ALICE, s, Action.APPROVE, "also fine")  # another comment
    assert not rules.is_replay(ADMIN, s, Action.APPROVE, "")  # another reviewer
    assert not rules.is_replay(ALICE, s, Action.REJECT, "")
    revised = dataclasses.replace(s, status=Status.PENDING, revision=2)  # same diff, new rev
    assert not rules.is_replay(ALICE, revised, Action.APPROVE, "")
    assert not rules.is_replay(ALICE, suggestion(), Action.APPROVE, "")  # no review yet


def test_line_comments_say_what_to_change_and_count_in_a_replay() -> None:
    note = LineComment(file="x", line=3, body="rename this")
    rules.check_decision(ALICE, suggestion(), Action.REVISE, "", (note,))
    asked = Review(
        reviewer="alice", action=Action.REVISE, diff_hash="h1", revision=1, comments=(note,)
    )
    s = suggestion(status=Status.REVISION_REQUESTED, reviews=(asked,))
    assert rules.is_replay(ALICE, s, Action.REVISE, "", (note,))
    assert not rules.is_replay(ALICE, s, Action.REVISE, "", ())
    other = LineComment(file="x", line=4, body="rename this")
    assert not rules.is_replay(ALICE, s, Action.REVISE, "", (other,))


# a generate run against what is open ------------------------------------------------------
def gen(sid: str, files: tuple[str, ...], h: str, status: Status = Status.PENDING) -> Suggestion:
    return suggestion(
        id=sid, source="ruff", agent="source:ruff", files=files, diff_hash=h, status=status
    )


TRIAGE = [
    # name, existing, proposed, stored ids, unchanged ids, superseded (old, by)
    ("new place", [], [gen("n1", ("a",), "h1")], ["n1"], [], []),
    ("same again", [gen("o1", ("a",), "h1")], [gen("n1", ("a",), "h1")], [], ["o1"], []),
    (
        "a different change for the same files",
        [gen("o1", ("a",), "h1")],
        [gen("n1", ("a",), "h2")],
        ["n1"],
        [],
        [("o1", "n1")],
    ),
    (
        "other files are another place",
        [gen("o1", ("a",), "h1")],
        [gen("n1", ("a", "b"), "h2")],
        ["n1"],
        [],
        [],
    ),
    (
        "an approved one is never superseded, and counts as open",
        [gen("o1", ("a",), "h1", Status.APPROVED)],
        [gen("n1", ("a",), "h2"), gen("n2", ("a",), "h1")],
        ["n1"],
        ["o1"],
        [],
    ),
    (
        "a rejected one is closed: the same diff is proposed anew",
        [gen("o1", ("a",), "h1", Status.REJECTED)],
        [gen("n1", ("a",), "h1")],
        ["n1"],
        [],
        [],
    ),
    (
        "blocked and revise-requested ones are undecided",
        [
            gen("o1", ("a",), "h1", Status.BLOCKED),
            gen("o2", ("b",), "h3", Status.REVISION_REQUESTED),
        ],
        [gen("n1", ("a",), "h2"), gen("n2", ("b",), "h4")],
        ["n1", "n2"],
        [],
        [("o1", "n1"), ("o2", "n2")],
    ),
    (
        "the one proposed again replaces a stale sibling",
        [gen("o1", ("a",), "h1"), gen("o2", ("a",), "h2")],
        [gen("n1", ("a",), "h2")],
        [],
        ["o2"],
        [("o1", "o2")],
    ),
    ("twice in one run", [], [gen("n1", ("a",), "h1"), gen("n2", ("a",), "h1")], ["n1"], [], []),
]


@pytest.mark.parametrize(
    ("name", "existing", "proposed", "stored", "unchanged", "superseded"),
    TRIAGE,
    ids=[t[0] for t in TRIAGE],
)
def test_a_generate_run_stores_only_what_is_new_and_supersedes_the_stale(
    name: str,
    existing: list[Suggestion],
    proposed: list[Suggestion],
    stored: list[str],
    unchanged: list[str],
    superseded: list[tuple[str, str]],
) -> None:
    out = rules.triage(proposed, existing)
    assert [s.id for s in out.store] == stored
    assert list(out.unchanged) == unchanged
    assert [(old.id, by) for old, by in out.superseded] == superseded


def test_a_place_is_source_base_and_the_set_of_files() -> None:
    s = gen("o1", ("b", "a"), "h1")
    assert rules.place(s) == ("ruff", "HEAD", frozenset({"a", "b"}))
    assert rules.place(s) == rules.place(gen("o2", ("a", "b"), "h9"))
    assert rules.place(s) != rules.place(dataclasses.replace(s, base_ref="main"))
