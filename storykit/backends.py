"""The objects plugins hand over through the registration hooks.

Each backend is a small object with a ``name`` and one ``async`` method that
does the real work. The services call them with a timeout and report a failure
as :class:`~storykit.errors.PluginError` naming the plugin and the hook.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from storykit.models import (
    Checks,
    Finding,
    PRResult,
    PRState,
    PullRequest,
    Suggestion,
    Variant,
)

__all__ = [
    "Draft",
    "GenerateRequest",
    "PRBackend",
    "PRRequest",
    "PRTracker",
    "PRUpdate",
    "Planner",
    "Policy",
    "PolicySubject",
    "Progress",
    "Refinement",
    "Refiner",
    "SuggestionSource",
]

Progress = Callable[[Mapping[str, Any]], Awaitable[None]]
"""Report progress while working: ``await progress({"done": 10, "total": 200})``.
Each call becomes a ``suggest.progress`` event."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Draft:
    """A suggestion a source proposes, before storykit stores and screens it."""

    title: str
    """One line, at most 300 characters."""
    diff: str
    """A unified diff (git style) against ``base_ref``, repository-relative paths."""
    rationale: str = ""
    """Why the change is wanted; shown to the reviewer."""
    base_ref: str = "HEAD"
    """The commit the diff applies to."""
    findings: tuple[Finding, ...] = ()
    """What the source noticed (shown with the policies' findings)."""
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Plain JSON values the source wants kept with the suggestion."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GenerateRequest:
    """What a source's ``generate`` is asked to look at."""

    repo_path: Path
    """The repository to look at (read it; never write to it)."""
    paths: tuple[str, ...] = ()
    """Repository-relative paths to limit the run to; empty means the whole repository."""
    progress: Progress | None = None
    """Where to report progress (``None`` when nobody listens): each
    ``await request.progress({...})`` becomes one ``suggest.progress`` event carrying
    the run's id."""


@runtime_checkable
class SuggestionSource(Protocol):
    """Proposes suggestions by looking at the repository."""

    name: str

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        """Return the suggestions for ``request``; may report progress."""
        ...


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Refinement:
    """A refiner's improved version; ``None`` fields are left as they were."""

    diff: str | None = None
    rationale: str | None = None
    title: str | None = None


@runtime_checkable
class Refiner(Protocol):
    """Improves a suggestion from a reviewer's instructions (an LLM, typically)."""

    name: str

    async def refine(self, suggestion: Suggestion, instructions: str) -> Refinement:
        """The improved suggestion. A refiner may set a ``timeout`` attribute (seconds)
        when it needs longer than ``STORYKIT_HOOK_TIMEOUT`` (a slow model)."""
        ...


@runtime_checkable
class Planner(Protocol):
    """Groups and orders approved suggestions into variants; the core derives their diffs."""

    name: str

    async def plan(self, goal: str, suggestions: Sequence[Suggestion]) -> Sequence[Variant]:
        """Variants naming some of ``suggestions`` in order; the core derives each diff."""
        ...


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PolicySubject:
    """What a policy judges: the proposal's text and its diff, and what it is made against."""

    diff: str
    """The unified diff being judged."""
    title: str = ""
    rationale: str = ""
    files: tuple[str, ...] = ()
    """The repository-relative paths the diff touches (new names for renames)."""
    source: str = ""
    """The source that proposed it (``agent`` for an outside agent's submission)."""
    agent: str = ""
    """The key name of who proposed it."""
    repo_path: Path | None = None
    """The repository the diff is proposed for (``REPO_PATH``), to check it against: set
    for a diff from outside (an agent's submission or revision, a refiner's version,
    ``/policies/check``); ``None`` for a source's own drafts, made from that repository."""
    base_ref: str = "HEAD"
    """The commit (or ref) in ``repo_path`` the diff is made against."""


@runtime_checkable
class Policy(Protocol):
    """Screens a diff. Its configuration is its own section of the policy document."""

    name: str

    def default_config(self) -> Mapping[str, Any]:
        """The section this policy uses when none is stored."""
        ...

    def validate_config(self, config: Mapping[str, Any]) -> None:
        """Raise :class:`~storykit.errors.Invalid` saying what is wrong; called before saving."""
        ...

    async def check(self, subject: PolicySubject, config: Mapping[str, Any]) -> Sequence[Finding]:
        """Findings for ``subject``; a ``deny`` finding blocks the suggestion."""
        ...


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PRRequest:
    repo_path: Path
    """The repository; make branches with git plumbing or a worktree in ``work_dir``,
    never in its working tree."""
    plan_id: str
    goal: str
    variant: Variant
    """The selected variant; its ``diff`` is exactly what people approved."""
    suggestions: tuple[Suggestion, ...]
    """The variant's suggestions, in order."""
    branch: str
    """The branch to create."""
    base_ref: str
    """The commit to branch from."""
    dry_run: bool
    """Change nothing: return the operations it would run."""
    requested_by: str
    """The key name of the person who asked."""
    work_dir: Path
    """A scratch folder inside storykit's data directory the backend may use."""
    branch_given: bool = False
    """True when the person opening the PR chose ``branch``: use exactly that name, and
    refuse (409) if it exists. False for storykit's default name, which a backend may
    suffix (``-2``, ``-3``, …) when it is taken, saying so in the operations."""


@runtime_checkable
class PRBackend(Protocol):
    """Turns a selected variant into a branch or a pull request."""

    name: str
    capabilities: frozenset[str]
    """Any of ``"push"``, ``"pull_request"``, ``"draft"``, ``"labels"``."""

    async def open(self, request: PRRequest) -> PRResult:
        """Create the branch or PR, or on ``dry_run`` say exactly what it would do."""
        ...


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PRUpdate:
    """What a forge said about one pull request: from a webhook, or from a poll.

    Every field but the name (``repository``, ``number``, as in
    :class:`~storykit.models.PullRequest`) may be left out: a check run's webhook says
    nothing about the state, a pull request's nothing about the checks. The core merges
    it into what it holds (:func:`storykit.pulls.apply_update`).
    """

    repository: str
    number: int
    state: PRState | None = None
    head: str | None = None
    """The commit the branch now points at; a new one means new checks."""
    checks: Mapping[str, Checks] = dataclasses.field(default_factory=dict)
    """Check name → its state, for the commit ``checks_head`` (default: ``head``, else
    the head storykit holds). Checks on any other commit are old news and ignored."""
    checks_head: str | None = None
    all_checks: bool = False
    """``checks`` is every check of that commit (a poll), not just the ones that changed."""
    at: datetime | None = None
    """The forge's time of ``state`` and ``head`` (its ``updated_at``); an update older
    than the one storykit holds is ignored."""
    merged_at: datetime | None = None
    url: str | None = None


@runtime_checkable
class PRTracker(Protocol):
    """A PR backend that can say what became of the pull requests it opened (optional).

    Through its forge's webhooks (``webhook`` names the route, ``POST /webhooks/<name>``,
    whose signature the core has checked before calling :meth:`webhook_updates`), or,
    where no webhook secret is configured, by polling (:meth:`poll`).
    """

    name: str

    @property
    def webhook(self) -> str | None:
        """``"github"`` or ``"gitlab"``: which webhook route's deliveries it reads; None for none.

        Read-only, so a class attribute ``webhook = "github"`` (type ``str``) satisfies it."""
        ...

    def webhook_updates(self, event: str, payload: Mapping[str, Any]) -> Sequence[PRUpdate]:
        """The updates one verified delivery carries (``event``: the forge's event header,
        like ``pull_request`` or ``Pipeline Hook``); empty for an event it does not follow."""
        ...

    async def poll(self, pr: PullRequest) -> PRUpdate:
        """Ask the forge for the pull request's state and the checks of its head."""
        ...
