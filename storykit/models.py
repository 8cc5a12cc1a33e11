"""The domain model: frozen, keyword-only values.

Everything here is plain data. ``to_dict`` gives the JSON shape used by the HTTP
API, the artifacts and the store; ``from_dict`` reads it back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "Action",
    "Checks",
    "Conflict",
    "Event",
    "Finding",
    "LineComment",
    "Outcome",
    "PRResult",
    "PRState",
    "Plan",
    "PolicyDecision",
    "PullRequest",
    "Review",
    "Revision",
    "Risk",
    "Side",
    "Status",
    "Suggestion",
    "Variant",
    "to_dict",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    UNKNOWN = "unknown"


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REVISION_REQUESTED = "revision_requested"
    REJECTED = "rejected"
    BLOCKED = "blocked"
    SUPERSEDED = "superseded"
    """Its source now proposes a different change for the same place (decision 0018)."""


class Action(StrEnum):
    """A reviewer's decision on a suggestion."""

    APPROVE = "approve"
    REVISE = "revise"
    REJECT = "reject"


class PRState(StrEnum):
    """What became of a pull request (a GitLab merge request) storykit opened."""

    OPEN = "open"
    MERGED = "merged"
    CLOSED = "closed"


class Checks(StrEnum):
    """The checks (CI) on a pull request's head commit, all together: ``failing`` if any
    fails, else ``pending`` if any has not finished, else ``passing``; ``none`` when the
    forge has reported none."""

    NONE = "none"
    PENDING = "pending"
    PASSING = "passing"
    FAILING = "failing"


class Outcome(StrEnum):
    """A policy's verdict; also a finding's severity. Ordered: allow < warn < deny."""

    ALLOW = "allow"
    WARN = "warn"
    DENY = "deny"

    @property
    def rank(self) -> int:
        return _OUTCOME_RANK[self]


_OUTCOME_RANK = {Outcome.ALLOW: 0, Outcome.WARN: 1, Outcome.DENY: 2}


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """One reason a policy (or a source's pre-review) gave."""

    rule: str
    """A short id of what was found (``secret``, ``path-not-allowed``, a ruff code…)."""
    message: str
    """One sentence a reviewer reads."""
    severity: Outcome = Outcome.WARN
    """``deny`` blocks the suggestion, ``warn`` raises its risk, ``allow`` is informational."""
    policy: str = ""
    """The policy (or source) that found it; set by the core."""
    file: str | None = None
    """The repository-relative file it is about, if any."""
    line: int | None = None
    """The line in the new file, if any."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        return cls(
            rule=str(d["rule"]),
            message=str(d["message"]),
            severity=Outcome(d.get("severity", "warn")),
            policy=str(d.get("policy", "")),
            file=d.get("file"),
            line=d.get("line"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PolicyDecision:
    """The combined verdict of every policy on one diff."""

    id: str
    outcome: Outcome
    risk: Risk
    findings: tuple[Finding, ...] = ()
    policy_version: str = ""
    at: datetime = dataclasses.field(default_factory=utcnow)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolicyDecision:
        return cls(
            id=str(d["id"]),
            outcome=Outcome(d["outcome"]),
            risk=Risk(d["risk"]),
            findings=tuple(Finding.from_dict(f) for f in d.get("findings", ())),
            policy_version=str(d.get("policy_version", "")),
            at=_dt(d.get("at")),
        )


class Side(StrEnum):
    """Which side of a diff a line comment is on: the file before (``old``) or after."""

    OLD = "old"
    NEW = "new"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LineComment:
    """A reviewer's comment on one line of the diff they reviewed (:mod:`storykit.comments`)."""

    file: str
    """The repository-relative file, as the suggestion's ``files`` names it."""
    line: int
    """The line number (from 1) on ``side`` in the revision the review was given to."""
    side: Side = Side.NEW
    """``new``: a line of the file after the change (added or context); ``old``: before it
    (removed or context)."""
    body: str
    """What the reviewer says about that line."""
    outdated: bool = False
    """A later revision changed the line (or the change around it, for ``old``)."""
    current_line: int | None = None
    """Where the line is in the current revision, on the same side; None once outdated."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LineComment:
        current = d.get("current_line")
        return cls(
            file=str(d["file"]),
            line=int(d["line"]),
            side=Side(d.get("side", "new")),
            body=str(d.get("body", "")),
            outdated=bool(d.get("outdated", False)),
            current_line=None if current is None else int(current),
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Review:
    """One person's decision on one version (``diff_hash``, ``revision``) of a suggestion."""

    reviewer: str
    action: Action
    diff_hash: str
    comment: str = ""
    revision: int = 0
    """The suggestion's revision it was given to (0: stored before storykit kept it)."""
    comments: tuple[LineComment, ...] = ()
    """Comments on lines of that revision's diff, besides the overall ``comment``."""
    at: datetime = dataclasses.field(default_factory=utcnow)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Review:
        return cls(
            reviewer=str(d["reviewer"]),
            action=Action(d["action"]),
            diff_hash=str(d["diff_hash"]),
            comment=str(d.get("comment", "")),
            revision=int(d.get("revision", 0)),
            comments=tuple(LineComment.from_dict(c) for c in d.get("comments", ())),
            at=_dt(d.get("at")),
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Revision:
    """One version of a suggestion's diff, kept when a later one replaces it."""

    suggestion_id: str
    """The suggestion it is a version of."""
    number: int
    """1 for the first diff; the suggestion's ``revision`` when this one was current."""
    title: str
    rationale: str
    diff: str
    diff_hash: str
    files: tuple[str, ...]
    base_ref: str = "HEAD"
    by: str = ""
    """Who made it: the proposer, or the person who asked a refiner for it."""
    via: str = ""
    """The event that made it: ``suggest.submitted``, ``suggest.generated``,
    ``suggest.revised``, ``suggest.refined`` (``suggest.blocked`` when policy blocked it)."""
    at: datetime = dataclasses.field(default_factory=utcnow)

    @classmethod
    def of(cls, s: Suggestion, *, by: str, via: str) -> Revision:
        """The revision ``s`` is at now."""
        return cls(
            suggestion_id=s.id,
            number=s.revision,
            title=s.title,
            rationale=s.rationale,
            diff=s.diff,
            diff_hash=s.diff_hash,
            files=s.files,
            base_ref=s.base_ref,
            by=by,
            via=via,
            at=s.updated_at,
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Revision:
        return cls(
            suggestion_id=str(d["suggestion_id"]),
            number=int(d["number"]),
            title=str(d.get("title", "")),
            rationale=str(d.get("rationale", "")),
            diff=str(d["diff"]),
            diff_hash=str(d["diff_hash"]),
            files=tuple(d.get("files", ())),
            base_ref=str(d.get("base_ref", "HEAD")),
            by=str(d.get("by", "")),
            via=str(d.get("via", "")),
            at=_dt(d.get("at")),
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Suggestion:
    """A proposed change: a unified diff with a title and a rationale."""

    id: str
    """``sug_…``, stable across revisions."""
    source: str
    """The source that proposed it (``agent`` for an outside agent's submission)."""
    agent: str
    """The key name of who proposed it; that one can never approve it."""
    title: str
    diff: str
    """The current revision's unified diff."""
    diff_hash: str
    """SHA-256 of ``diff``; an approval counts only for the hash it was given to."""
    files: tuple[str, ...]
    """The repository-relative paths the diff touches."""
    rationale: str = ""
    base_ref: str = "HEAD"
    """The commit the diff applies to."""
    risk: Risk = Risk.UNKNOWN
    """The highest risk any policy gave the current diff."""
    findings: tuple[Finding, ...] = ()
    """What the policies (and the source) found in the current diff."""
    status: Status = Status.PENDING
    """Where it is in review."""
    reviews: tuple[Review, ...] = ()
    """Every decision given, oldest first (earlier revisions' too)."""
    decision: PolicyDecision | None = None
    """The policies' combined verdict on the current diff."""
    revision: int = 1
    """1 for the first diff; each revise adds one."""
    created_at: datetime = dataclasses.field(default_factory=utcnow)
    updated_at: datetime = dataclasses.field(default_factory=utcnow)
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """What the source kept with it (plain JSON)."""
    superseded_by: str | None = None
    """When ``superseded``: the suggestion its source proposes for the same place instead."""

    @property
    def approvals(self) -> tuple[Review, ...]:
        """Approvals that still count: those given to the current diff."""
        return tuple(
            r for r in self.reviews if r.action is Action.APPROVE and r.diff_hash == self.diff_hash
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Suggestion:
        decision = d.get("decision")
        return cls(
            id=str(d["id"]),
            source=str(d["source"]),
            agent=str(d["agent"]),
            title=str(d["title"]),
            diff=str(d["diff"]),
            diff_hash=str(d["diff_hash"]),
            files=tuple(d.get("files", ())),
            rationale=str(d.get("rationale", "")),
            base_ref=str(d.get("base_ref", "HEAD")),
            risk=Risk(d.get("risk", "unknown")),
            findings=tuple(Finding.from_dict(f) for f in d.get("findings", ())),
            status=Status(d.get("status", "pending")),
            reviews=tuple(Review.from_dict(r) for r in d.get("reviews", ())),
            decision=PolicyDecision.from_dict(decision) if decision else None,
            revision=int(d.get("revision", 1)),
            created_at=_dt(d.get("created_at")),
            updated_at=_dt(d.get("updated_at")),
            metadata=dict(d.get("metadata", {})),
            superseded_by=d.get("superseded_by"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Conflict:
    """Two or more suggestions change overlapping lines of one file."""

    file: str
    """The file both change."""
    suggestion_ids: tuple[str, ...]
    """The suggestions whose hunks overlap there."""
    detail: str = ""
    """Which lines, for people."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Conflict:
        return cls(
            file=str(d["file"]),
            suggestion_ids=tuple(d.get("suggestion_ids", ())),
            detail=str(d.get("detail", "")),
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Variant:
    """One way to carry out a plan: which suggestions, combined into one diff.

    A planner only chooses ``key``, ``title`` and the ``suggestion_ids`` in order; the
    core derives the rest from the suggestions' approved diffs (see :mod:`storykit.combine`).
    """

    key: str
    """Unique within the plan (``a``, ``b``, … or the planner's own)."""
    title: str
    """What this way of doing it is, for people choosing."""
    suggestion_ids: tuple[str, ...]
    """The suggestions it carries out, in the order their diffs apply."""
    diff: str = ""
    """The combined diff, derived by the core."""
    conflicts: tuple[Conflict, ...] = ()
    """Where its suggestions overlap; derived by the core."""
    risk: Risk = Risk.UNKNOWN
    """The highest risk among its suggestions; derived by the core."""
    planner: str = ""
    """The planner that proposed it; set by the core."""
    suggestion_hashes: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """The ``diff_hash`` of each suggestion in ``diff`` when the plan was made: a PR is
    refused unless each is still the suggestion's approved diff."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Variant:
        return cls(
            key=str(d["key"]),
            title=str(d["title"]),
            suggestion_ids=tuple(d.get("suggestion_ids", ())),
            diff=str(d.get("diff", "")),
            conflicts=tuple(Conflict.from_dict(c) for c in d.get("conflicts", ())),
            risk=Risk(d.get("risk", "unknown")),
            planner=str(d.get("planner", "")),
            suggestion_hashes={str(k): str(v) for k, v in d.get("suggestion_hashes", {}).items()},
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PullRequest:
    """A pull request a PR backend opened for a plan, as storykit last heard of it.

    ``(backend, repository, number)`` names it: ``repository`` is what the forge calls
    the repository in its webhooks (GitHub ``owner/name`` in lower case, GitLab the
    project's numeric id), ``number`` GitHub's number or GitLab's ``iid``.
    """

    backend: str
    repository: str
    number: int
    url: str
    branch: str
    variant: str
    head: str = ""
    """The commit the pull request's branch points at; its checks are for this commit."""
    state: PRState = PRState.OPEN
    checks: Checks = Checks.NONE
    check_runs: Mapping[str, Checks] = dataclasses.field(default_factory=dict)
    """Each check (a GitHub check run or suite, a GitLab pipeline) on ``head`` → its state."""
    opened_by: str = ""
    opened_at: datetime = dataclasses.field(default_factory=utcnow)
    updated_at: datetime = dataclasses.field(default_factory=utcnow)
    """When storykit last changed this record."""
    forge_updated_at: datetime | None = None
    """The forge's own time of the state held here: older news is ignored."""
    merged_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.backend, self.repository, self.number)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PullRequest:
        return cls(
            backend=str(d["backend"]),
            repository=str(d["repository"]),
            number=int(d["number"]),
            url=str(d.get("url", "")),
            branch=str(d.get("branch", "")),
            variant=str(d.get("variant", "")),
            head=str(d.get("head", "")),
            state=PRState(d.get("state", "open")),
            checks=Checks(d.get("checks", "none")),
            check_runs={str(k): Checks(v) for k, v in d.get("check_runs", {}).items()},
            opened_by=str(d.get("opened_by", "")),
            opened_at=_dt(d.get("opened_at")),
            updated_at=_dt(d.get("updated_at")),
            forge_updated_at=_dt(d["forge_updated_at"]) if d.get("forge_updated_at") else None,
            merged_at=_dt(d["merged_at"]) if d.get("merged_at") else None,
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """Approved suggestions grouped into variants, one of which becomes a branch or PR."""

    id: str
    """``plan_…``."""
    goal: str
    """What the person who made the plan wants done."""
    variants: tuple[Variant, ...]
    """The ways to do it, as the planner proposed them."""
    created_by: str
    """The key name of who made it."""
    selected: str | None = None
    """The chosen variant's key, once chosen."""
    selected_by: str | None = None
    """Who chose it."""
    created_at: datetime = dataclasses.field(default_factory=utcnow)
    updated_at: datetime = dataclasses.field(default_factory=utcnow)
    pull_requests: tuple[PullRequest, ...] = ()
    """The pull requests opened from this plan's variants, oldest first, with their state."""

    def variant(self, key: str) -> Variant | None:
        return next((v for v in self.variants if v.key == key), None)

    def pull_request(self, key: tuple[str, str, int]) -> PullRequest | None:
        return next((p for p in self.pull_requests if p.key == key), None)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        return cls(
            id=str(d["id"]),
            goal=str(d["goal"]),
            variants=tuple(Variant.from_dict(v) for v in d.get("variants", ())),
            created_by=str(d.get("created_by", "")),
            selected=d.get("selected"),
            selected_by=d.get("selected_by"),
            created_at=_dt(d.get("created_at")),
            updated_at=_dt(d.get("updated_at")),
            pull_requests=tuple(PullRequest.from_dict(p) for p in d.get("pull_requests", ())),
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PRResult:
    """What a PR backend did (or, on a dry run, would do)."""

    backend: str
    """The PR backend's name."""
    branch: str
    """The branch made (or that would be made)."""
    diff: str
    """Exactly the diff it carries: the variant's approved diff."""
    dry_run: bool
    """True when nothing was changed."""
    operations: tuple[str, ...] = ()
    """What it did (or would do), one line per step, for people."""
    commit: str | None = None
    """The commit made, if any."""
    url: str | None = None
    """The pull or merge request's address, if one was opened."""
    plan_id: str = ""
    variant: str = ""
    number: int | None = None
    """The pull request's number (GitLab: the merge request's ``iid``), when one was opened;
    with :attr:`repository` it lets storykit follow the PR (:class:`PullRequest`)."""
    repository: str | None = None
    """The repository as the forge names it in webhooks (see :class:`PullRequest`)."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PRResult:
        return cls(
            backend=str(d["backend"]),
            branch=str(d["branch"]),
            diff=str(d.get("diff", "")),
            dry_run=bool(d.get("dry_run", True)),
            operations=tuple(d.get("operations", ())),
            commit=d.get("commit"),
            url=d.get("url"),
            plan_id=str(d.get("plan_id", "")),
            variant=str(d.get("variant", "")),
            number=int(d["number"]) if d.get("number") is not None else None,
            repository=str(d["repository"]) if d.get("repository") is not None else None,
        )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """One state change. ``id`` increases monotonically across the log."""

    id: int
    """Increases by one per event, in commit order, with no gaps."""
    type: str
    """``suggest.submitted``, ``plan.created``… (docs/api.md lists them)."""
    data: Mapping[str, Any]
    """The event's plain JSON payload."""
    at: datetime = dataclasses.field(default_factory=utcnow)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        return cls(id=int(d["id"]), type=str(d["type"]), data=dict(d["data"]), at=_dt(d.get("at")))


def _dt(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return utcnow()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value  # str (StrEnum included), int, float, bool, None


def to_dict(value: object) -> dict[str, Any]:
    """The JSON-ready dict of any model value."""
    plain = _plain(value)
    if not isinstance(plain, dict):
        raise TypeError(f"not a model value: {value!r}")
    return plain
