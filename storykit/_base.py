"""What every use case shares: the parts of the core, committing a change with its
event, screening a draft, and input checks."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from storykit import rules
from storykit._offload import off_loop
from storykit._unicode import check_text
from storykit.artifacts import ArtifactWriter
from storykit.backends import Draft, PolicySubject
from storykit.diffs import ParsedDiff, diff_hash, parse_diff
from storykit.errors import Invalid
from storykit.events import EventBus
from storykit.idempotency import IdempotentResult
from storykit.ids import check_id, new_id
from storykit.metrics import Metrics
from storykit.models import Event, Finding, Outcome, Plan, PolicyDecision, Revision, Suggestion
from storykit.plugins import Registry
from storykit.policy import PolicyEngine
from storykit.settings import Settings
from storykit.store import Store

__all__ = ["CoreBase"]

MAX_TITLE = 300
MAX_TEXT = 20_000
_REF_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._/@{}^~-]{0,199}\Z")


class CoreBase:
    """The parts of the core every use case works with; :class:`~storykit.services.Storykit`
    sets them."""

    settings: Settings
    store: Store
    bus: EventBus
    registry: Registry
    metrics: Metrics
    policy: PolicyEngine
    artifacts: ArtifactWriter

    async def _commit(
        self,
        event_type: str,
        data: Mapping[str, Any],
        *,
        suggestions: Sequence[Suggestion] = (),
        plans: Sequence[Plan] = (),
        policy_config: Mapping[str, Any] | None = None,
        expect: Mapping[str, Any] | None = None,
        policy_expect: Mapping[str, Any] | None = None,
        idempotency: IdempotentResult | None = None,
        delivery: tuple[str, str] | None = None,
        revisions: Sequence[Revision] = (),
    ) -> Event:
        event = await self.store.write(
            event_type,
            data,
            suggestions=suggestions,
            plans=plans,
            policy_config=policy_config,
            expect=expect,
            policy_expect=policy_expect,
            idempotency=idempotency,
            delivery=delivery,
            revisions=revisions,
        )
        self.bus.publish(event)
        if suggestions or plans:
            self.artifacts.submit(suggestions, plans)  # written after, off the reply's path
        return event

    async def emit(self, event_type: str, data: Mapping[str, Any]) -> Event:
        """Store and publish an event that goes with no state change (progress, say)."""
        return await self._commit(event_type, data)

    async def get_suggestion(self, suggestion_id: str) -> Suggestion:
        return await self.store.get_suggestion(check_id(suggestion_id, "sug", what="suggestion id"))

    async def get_plan(self, plan_id: str) -> Plan:
        return await self.store.get_plan(check_id(plan_id, "plan", what="plan id"))

    async def policy_document(self) -> dict[str, Any]:
        """The effective policy document: stored sections over each policy's defaults."""
        return self.policy.effective(await self.store.get_policy_config())

    async def _screen(
        self,
        *,
        diff: str,
        title: str,
        rationale: str,
        source: str,
        agent: str,
        files: tuple[str, ...],
        base_ref: str,
        outside: bool,
        extra: Sequence[Finding] = (),
        document: Mapping[str, Any] | None = None,
    ) -> PolicyDecision:
        subject = PolicySubject(
            diff=diff,
            title=title,
            rationale=rationale,
            files=files,
            source=source,
            agent=agent,
            repo_path=self.settings.repo_path if outside else None,
            base_ref=base_ref,
        )
        if document is None:
            document = await self.policy_document()
        decision = await self.policy.evaluate(subject, document, extra=extra)
        self.metrics.policy_decisions.labels(outcome=decision.outcome.value).inc()
        return decision

    # -- suggestions ----------------------------------------------------------
    async def _new_suggestion(
        self,
        *,
        draft: Draft,
        source: str,
        agent: str,
        outside: bool = False,
        document: Mapping[str, Any] | None = None,
    ) -> Suggestion:
        """Validate a draft and screen it. ``outside``: a proposal from outside the
        repository's own sources (an agent, a refiner), which the policies check against
        the repository (does it apply to its base, what does ruff say of it)."""
        title = _text(draft.title, "title", MAX_TITLE, required=True)
        rationale = _text(draft.rationale, "rationale", MAX_TEXT)
        base_ref = _ref(draft.base_ref)
        diff, parsed, digest = await _read_diff(draft.diff, self.settings.max_body_bytes)
        decision = await self._screen(
            diff=diff,
            title=title,
            rationale=rationale,
            source=source,
            agent=agent,
            files=parsed.files,
            base_ref=base_ref,
            outside=outside,
            extra=draft.findings,
            document=document,
        )
        return Suggestion(
            id=new_id("sug"),
            source=source,
            agent=agent,
            title=title,
            rationale=rationale,
            diff=diff,
            diff_hash=digest,
            files=parsed.files,
            base_ref=base_ref,
            risk=decision.risk,
            findings=decision.findings,
            status=rules.status_for_new_diff(decision.outcome is Outcome.DENY),
            decision=decision,
            metadata=dict(draft.metadata),
        )


def _backend_timeout(backend: object, default: float) -> float:
    """A backend that declares its own ``timeout`` (an LLM, a forge waiting out a rate
    limit) gets that much, plus a margin so its own, clearer timeout error wins."""
    own = getattr(backend, "timeout", None)
    if isinstance(own, (int, float)) and not isinstance(own, bool) and own > 0:
        return max(default, float(own) + 5.0)
    return default


def _summary(s: Suggestion) -> dict[str, Any]:
    return {
        "id": s.id,
        "title": s.title,
        "status": s.status.value,
        "risk": s.risk.value,
        "source": s.source,
        "agent": s.agent,
        "revision": s.revision,
        "diff_hash": s.diff_hash,
        "files": list(s.files),
    }


def _branch_name(plan_id: str, variant: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", variant.lower()).strip("-") or "variant"
    return f"storykit/{plan_id.lower().replace('_', '-')}-{slug[:40]}"


# What ``git check-ref-format --branch`` refuses anywhere in a name: control characters,
# space, ~ ^ : ? * [ \, "..", and "@{".
_BRANCH_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{")


def _branch(value: object) -> str:
    """A branch name someone chose, if git accepts it as a new branch (422 otherwise)."""
    name = _text(value, "branch", 200, required=True)
    if (
        _BRANCH_BAD.search(name)
        or name in ("@", "HEAD")
        or name.startswith("-")
        or name.endswith(".")
        or any(
            not part or part.startswith(".") or part.endswith(".lock") for part in name.split("/")
        )
    ):
        raise Invalid(
            f"branch {name!r} is not a valid git branch name (git check-ref-format --branch);"
            " for example 'storykit/tidy-imports': no spaces, '..', '~^:?*[\\' or '@{',"
            " no part starting with '.' or ending with '.lock'"
        )
    return name


def _text(value: object, name: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if required and isinstance(value, str) and not value.strip():
        raise Invalid(f"{name} is required")
    return check_text(value, name, limit)


async def _read_diff(
    value: object, limit: int, *, required: bool = True
) -> tuple[str, ParsedDiff, str]:
    """Check, parse and hash a diff: in a worker thread when it is big (a 5 MB diff takes
    about a second, which on the event loop every other request would wait out)."""

    def read() -> tuple[str, ParsedDiff, str]:
        diff = _text(value, "diff", limit, required=required)
        return diff, parse_diff(diff), diff_hash(diff)

    return await off_loop(len(value) if isinstance(value, str) else 0, read)


def _ref(value: object) -> str:
    ref = _text(value or "HEAD", "base_ref", 200)
    if not _REF_RE.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")):
        raise Invalid(f"base_ref {ref!r} is not a valid git ref")
    return ref


def _limit(value: object, most: int = 200) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise Invalid(f"limit must be a whole number from 1 to {most}")
    return value


def _enum(kind: Any, value: str | None, name: str) -> Any:
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise Invalid(f"{name} {value!r} is not one of: {allowed}") from None
