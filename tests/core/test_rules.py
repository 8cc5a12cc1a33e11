"""The review rules as tables: no database, no event loop (storykit.rules)."""

from __future__ import annotations

import dataclasses

import pytest

from storykit import rules
from storykit.auth import Principal, Role
from storykit.errors import Conflict, Forbidden, Invalid, StorykitError
from storykit.models import Action, Review, Status, Suggestion

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
