"""The review rules, as plain functions: who may decide what, what a decision does, and
when an approval still counts. No I/O and no database: the use cases call these, and
tests/core/test_rules.py checks them as tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from storykit.auth import Principal, Role
from storykit.errors import Conflict, Forbidden, Invalid
from storykit.models import Action, LineComment, Review, Status, Suggestion

__all__ = [
    "OPEN",
    "SUPERSEDABLE",
    "Triage",
    "approved_for_current_diff",
    "check_decision",
    "is_replay",
    "place",
    "status_after",
    "status_for_new_diff",
    "triage",
]

OPEN = frozenset({Status.PENDING, Status.REVISION_REQUESTED, Status.BLOCKED, Status.APPROVED})
"""Still in play: a source proposing the same diff again adds nothing (decision 0018)."""
SUPERSEDABLE = frozenset({Status.PENDING, Status.REVISION_REQUESTED, Status.BLOCKED})
"""Undecided, so a source's newer proposal for the same place replaces it; an approval is
a person's decision, which no source overrides."""

_AFTER = {
    Action.APPROVE: Status.APPROVED,
    Action.REVISE: Status.REVISION_REQUESTED,
    Action.REJECT: Status.REJECTED,
}


def approved_for_current_diff(s: Suggestion) -> bool:
    """Approved, by at least one approval given to the diff it has now: what a plan and a
    PR may take."""
    return s.status is Status.APPROVED and bool(s.approvals)


def check_decision(
    actor: Principal,
    s: Suggestion,
    action: Action,
    comment: str,
    comments: tuple[LineComment, ...] = (),
) -> None:
    """Raise unless ``actor`` may make this decision on ``s`` (the rules every host gets).

    A revision request says what to change: in its comment, or in line comments."""
    actor.require(Role.REVIEWER)  # agents propose, people decide
    if action is Action.REVISE and not comment.strip() and not comments:
        raise Invalid("asking for a revision needs a comment saying what to change")
    if s.status is Status.SUPERSEDED and action is not Action.REJECT:
        instead = f" by {s.superseded_by}" if s.superseded_by else ""
        raise Conflict(
            f"this suggestion was superseded{instead}: its source now proposes another change"
            " for the same files; review that one instead"
        )
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


def is_replay(
    actor: Principal,
    s: Suggestion,
    action: Action,
    comment: str,
    comments: tuple[LineComment, ...] = (),
) -> bool:
    """The same decision again (reviewer, action, comment and line comments, diff and
    revision): a retried request, which changes nothing. A decision after any revision
    is a new one."""
    last: Review | None = s.reviews[-1] if s.reviews else None
    if last is None:
        return False
    given = [(c.file, c.line, c.side, c.body) for c in last.comments]
    asked = [(c.file, c.line, c.side, c.body) for c in comments]
    return (last.reviewer, last.action, last.diff_hash, last.comment, last.revision, given) == (
        actor.name,
        action,
        s.diff_hash,
        comment,
        s.revision,
        asked,
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


def place(s: Suggestion) -> tuple[str, str, frozenset[str]]:
    """Where a suggestion proposes its change: its source, its base and the set of files it
    touches (decision 0018). One source proposes one change for one place at a time."""
    return (s.source, s.base_ref, frozenset(s.files))


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Triage:
    """What a generate run does with what its sources proposed."""

    store: tuple[Suggestion, ...]
    """New proposals: stored."""
    unchanged: tuple[str, ...]
    """Ids of the open suggestions a proposal repeated (same place, same diff): nothing
    is stored for those."""
    superseded: tuple[tuple[Suggestion, str], ...]
    """Undecided suggestions whose place now gets another change: each with the id of
    the suggestion that replaces it."""


def triage(proposed: Sequence[Suggestion], existing: Sequence[Suggestion]) -> Triage:
    """Sort a run's ``proposed`` suggestions against the ``existing`` ones of their sources.

    A proposal whose place and ``diff_hash`` match an :data:`OPEN` suggestion (or an
    earlier proposal of the same run) is not stored again. An existing suggestion still
    undecided (:data:`SUPERSEDABLE`) at a place the run proposes for, with a diff none
    of the run's proposals for that place has, is superseded by the first of them.
    """
    open_ = [e for e in existing if e.status in OPEN]
    known = {(place(e), e.diff_hash): e.id for e in open_}
    store: list[Suggestion] = []
    unchanged: list[str] = []
    by_place: dict[tuple[str, str, frozenset[str]], str] = {}
    hashes: dict[tuple[str, str, frozenset[str]], set[str]] = {}
    for s in proposed:
        key = place(s)
        hashes.setdefault(key, set()).add(s.diff_hash)
        same = known.get((key, s.diff_hash))
        if same is None:
            known[(key, s.diff_hash)] = s.id
            store.append(s)
            same = s.id
        elif same not in unchanged and any(e.id == same for e in open_):
            unchanged.append(same)
        by_place.setdefault(key, same)
    superseded = tuple(
        (e, by_place[place(e)])
        for e in open_
        if e.status in SUPERSEDABLE and place(e) in by_place and e.diff_hash not in hashes[place(e)]
    )
    return Triage(store=tuple(store), unchanged=tuple(unchanged), superseded=superseded)
