"""The review rules, as plain functions: who may decide what, what a decision does, and
when an approval still counts. No I/O and no database: the use cases call these, and
tests/core/test_rules.py checks them as tables.
"""

from __future__ import annotations

from storykit.auth import Principal, Role
from storykit.errors import Conflict, Forbidden, Invalid
from storykit.models import Action, Review, Status, Suggestion

__all__ = [
    "approved_for_current_diff",
    "check_decision",
    "is_replay",
    "status_after",
    "status_for_new_diff",
]

_AFTER = {
    Action.APPROVE: Status.APPROVED,
    Action.REVISE: Status.REVISION_REQUESTED,
    Action.REJECT: Status.REJECTED,
}


def approved_for_current_diff(s: Suggestion) -> bool:
    """Approved, by at least one approval given to the diff it has now: what a plan and a
    PR may take."""
    return s.status is Status.APPROVED and bool(s.approvals)


def check_decision(actor: Principal, s: Suggestion, action: Action, comment: str) -> None:
    """Raise unless ``actor`` may make this decision on ``s`` (the rules every host gets)."""
    actor.require(Role.REVIEWER)  # agents propose, people decide
    if action is Action.REVISE and not comment.strip():
        raise Invalid("asking for a revision needs a comment saying what to change")
    if action is not Action.APPROVE:
        return
    if actor.name == s.agent:
        raise Forbidden(
            f"{actor.name!r} proposed this suggestion, and nobody approves their own"
            " proposal: approve it with another person's key, and let agents submit"
            " with their own key (`storykit keys new --role agent`)"
        )
    if s.status is Status.BLOCKED:
        raise Conflict("this suggestion is blocked by policy and cannot be approved")
    if s.status is Status.REJECTED:
        raise Conflict("this suggestion was rejected; it needs a new revision first")


def is_replay(actor: Principal, s: Suggestion, action: Action, comment: str) -> bool:
    """The same decision again (reviewer, action, comment, diff and revision): a retried
    request, which changes nothing. A decision after any revision is a new one."""
    last: Review | None = s.reviews[-1] if s.reviews else None
    if last is None:
        return False
    return (last.reviewer, last.action, last.diff_hash, last.comment, last.revision) == (
        actor.name,
        action,
        s.diff_hash,
        comment,
        s.revision,
    )


def status_after(current: Status, action: Action) -> Status:
    """The status a decision leaves; asking a blocked suggestion for a revision keeps it
    blocked (only a new revision that policy allows unblocks it)."""
    if current is Status.BLOCKED and action is Action.REVISE:
        return Status.BLOCKED
    return _AFTER[action]


def status_for_new_diff(blocked: bool) -> Status:
    """A new suggestion, or a new revision, starts over: blocked if policy blocks it, else
    pending. A revision's earlier approvals stop counting: the status is no longer
    approved, and an approval counts for the diff it was given to only."""
    return Status.BLOCKED if blocked else Status.PENDING
