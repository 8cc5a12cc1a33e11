"""The use cases: each one async call on :class:`Storykit`.

Hosts stay thin: a route or a command parses input, calls one method here and
renders the result. Every method that changes state writes exactly one event, in
the same transaction as the change. Every method takes the acting
:class:`~storykit.auth.Principal` and enforces the rules itself, so no host can
forget them: agents never approve, nobody approves their own proposal, an
approval stops counting when the diff changes, blocked suggestions cannot be
approved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anyio
import pluggy

from storykit.artifacts import ArtifactWriter
from storykit.auth import Principal, Role
from storykit.backends import Draft, GenerateRequest, PolicySubject, PreReviewer, PRRequest
from storykit.diffs import diff_hash, parse_diff, safe_repo_path
from storykit.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotConfigured,
    PluginError,
    StorykitError,
)
from storykit.events import EventBus
from storykit.ids import check_id, new_id
from storykit.metrics import Metrics
from storykit.models import (
    Action,
    Event,
    Finding,
    Outcome,
    Plan,
    PolicyDecision,
    PRResult,
    Review,
    Risk,
    Status,
    Suggestion,
    Variant,
    to_dict,
    utcnow,
)
from storykit.plugins import Registry, get_plugin_manager
from storykit.policy import PolicyEngine, policy_version
from storykit.settings import Settings
from storykit.store import Store

__all__ = ["GenerateResult", "Storykit"]

log = logging.getLogger("storykit")

MAX_TITLE = 300
MAX_TEXT = 20_000
_REF_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._/@{}^~-]{0,199}\Z")
_OBSERVER_QUEUE = 10_000


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GenerateResult:
    suggestions: tuple[Suggestion, ...]
    errors: tuple[str, ...] = ()


class Storykit:
    """The storykit core: settings, store, event bus, plugins and the use cases over them.

    Build it with :meth:`open`, which also runs its background tasks::

        async with Storykit.open(Settings.from_env()) as core:
            await core.submit(actor, title="…", diff="…")
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        bus: EventBus,
        registry: Registry,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.registry = registry
        self.metrics = metrics
        self.policy = PolicyEngine(registry)
        self.artifacts = ArtifactWriter(settings.suggestions_dir, settings.plans_dir)
        self._observers_in, self._observers_out = anyio.create_memory_object_stream[Event](
            _OBSERVER_QUEUE
        )
        self._dropped_observations = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        metrics: Metrics | None = None,
    ) -> AsyncIterator[Storykit]:
        from storykit.store.sqlite import SqliteStore  # the default, embedded store

        settings.ensure_dirs()
        pm = plugin_manager or get_plugin_manager(only=settings.load_plugins)
        metrics = metrics or Metrics()
        registry = Registry(pm, settings)
        for failure in registry.failures:  # raised while registering, before metrics existed
            metrics.plugin_errors.labels(plugin=failure.plugin, hook=failure.hook).inc()
        registry.on_failure = lambda f: metrics.plugin_errors.labels(
            plugin=f.plugin, hook=f.hook
        ).inc()
        async with SqliteStore(settings.db_path) as store:
            bus = EventBus(store, queue_max=settings.sse_queue_max)
            bus.on_drop = lambda n: metrics.sse_queue_dropped.inc(n)
            async with bus, anyio.create_task_group() as tg:
                core = cls(settings, store=store, bus=bus, registry=registry, metrics=metrics)
                bus.add_listener(core._observe)
                tg.start_soon(core._run_observers)
                try:
                    yield core
                finally:
                    core._observers_in.close()
                    tg.cancel_scope.cancel()

    # -- events ---------------------------------------------------------------
    def _observe(self, event: Event) -> None:
        self.metrics.events_published.labels(type=event.type).inc()
        try:
            self._observers_in.send_nowait(event)
        except anyio.WouldBlock:
            self._dropped_observations += 1

    async def _run_observers(self) -> None:
        async with self._observers_out:
            async for event in self._observers_out:
                await self.registry.notify(event)

    async def _commit(
        self,
        event_type: str,
        data: Mapping[str, Any],
        *,
        suggestions: Sequence[Suggestion] = (),
        plans: Sequence[Plan] = (),
        policy_config: Mapping[str, Any] | None = None,
        expect: Mapping[str, Any] | None = None,
    ) -> Event:
        event = await self.store.write(
            event_type,
            data,
            suggestions=suggestions,
            plans=plans,
            policy_config=policy_config,
            expect=expect,
        )
        self.bus.publish(event)
        for s in suggestions:
            await self.artifacts.suggestion(s)
        for p in plans:
            await self.artifacts.plan(p)
        return event

    async def emit(self, event_type: str, data: Mapping[str, Any]) -> Event:
        """Store and publish an event that goes with no state change (progress, say)."""
        return await self._commit(event_type, data)

    # -- reads ----------------------------------------------------------------
    async def get_suggestion(self, suggestion_id: str) -> Suggestion:
        return await self.store.get_suggestion(check_id(suggestion_id, "sug", what="suggestion id"))

    async def list_suggestions(
        self,
        *,
        status: str | None = None,
        source: str | None = None,
        agent: str | None = None,
        risk: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Suggestion]:
        return await self.store.list_suggestions(
            status=_enum(Status, status, "status"),
            source=source or None,
            agent=agent or None,
            risk=_enum(Risk, risk, "risk"),
            after=check_id(after, "sug", what="after") if after else None,
            limit=_limit(limit),
        )

    async def get_plan(self, plan_id: str) -> Plan:
        return await self.store.get_plan(check_id(plan_id, "plan", what="plan id"))

    async def list_plans(self, *, after: str | None = None, limit: int = 50) -> list[Plan]:
        return await self.store.list_plans(
            after=check_id(after, "plan", what="after") if after else None, limit=_limit(limit)
        )

    async def read_events(self, *, after: int = 0, limit: int = 100) -> list[Event]:
        if after < 0:
            raise Invalid("after must be 0 or more")
        return await self.store.read_events(after=after, limit=_limit(limit, 1000))

    async def refresh_gauges(self) -> None:
        self.metrics.set_suggestion_counts(await self.store.count_suggestions_by_status())

    def plugins(self) -> list[dict[str, Any]]:
        return self.registry.describe()

    # -- policies -------------------------------------------------------------
    async def get_policies(self) -> dict[str, Any]:
        """The effective policy document and its version."""
        document = self.policy.effective(await self.store.get_policy_config())
        return {"version": policy_version(document), "policies": document}

    async def set_policies(self, actor: Principal, document: object) -> dict[str, Any]:
        """Replace the policy document (admin); every section is validated before saving."""
        actor.require(Role.ADMIN)
        clean = self.policy.validate(document)
        effective = self.policy.effective(clean)
        version = policy_version(effective)
        await self._commit(
            "policy.updated", {"version": version, "by": actor.name}, policy_config=clean
        )
        return {"version": version, "policies": effective}

    async def check_diff(
        self, *, diff: str, title: str = "", rationale: str = "", agent: str = ""
    ) -> PolicyDecision:
        """Evaluate a diff against the current policies without storing anything."""
        parsed = parse_diff(_text(diff, "diff", self.settings.max_body_bytes))
        subject = PolicySubject(
            diff=diff, title=title, rationale=rationale, files=parsed.files, agent=agent
        )
        document = self.policy.effective(await self.store.get_policy_config())
        return await self.policy.evaluate(subject, document)

    async def _screen(
        self,
        *,
        diff: str,
        title: str,
        rationale: str,
        source: str,
        agent: str,
        files: tuple[str, ...],
        extra: Sequence[Finding] = (),
    ) -> PolicyDecision:
        subject = PolicySubject(
            diff=diff, title=title, rationale=rationale, files=files, source=source, agent=agent
        )
        document = self.policy.effective(await self.store.get_policy_config())
        decision = await self.policy.evaluate(subject, document, extra=extra)
        self.metrics.policy_decisions.labels(outcome=decision.outcome.value).inc()
        return decision

    # -- suggestions ----------------------------------------------------------
    async def _new_suggestion(
        self, *, draft: Draft, source: str, agent: str, pre_review: bool = False
    ) -> Suggestion:
        """Validate a draft, pre-review it (for outside proposals) and screen it."""
        title = _text(draft.title, "title", MAX_TITLE, required=True)
        rationale = _text(draft.rationale, "rationale", MAX_TEXT)
        diff = _text(draft.diff, "diff", self.settings.max_body_bytes, required=True)
        base_ref = _ref(draft.base_ref)
        parsed = parse_diff(diff)
        extra = list(draft.findings)
        if pre_review:
            extra.extend(await self._pre_review(draft))
        decision = await self._screen(
            diff=diff,
            title=title,
            rationale=rationale,
            source=source,
            agent=agent,
            files=parsed.files,
            extra=extra,
        )
        return Suggestion(
            id=new_id("sug"),
            source=source,
            agent=agent,
            title=title,
            rationale=rationale,
            diff=diff,
            diff_hash=diff_hash(diff),
            files=parsed.files,
            base_ref=base_ref,
            risk=decision.risk,
            findings=decision.findings,
            status=Status.BLOCKED if decision.outcome is Outcome.DENY else Status.PENDING,
            decision=decision,
            metadata=dict(draft.metadata),
        )

    async def submit(
        self,
        actor: Principal,
        *,
        title: str,
        diff: str,
        rationale: str = "",
        base_ref: str = "HEAD",
    ) -> Suggestion:
        """An external agent proposes a diff. It is pre-reviewed, screened and stored."""
        actor.require(Role.AGENT)
        draft = Draft(title=title, diff=diff, rationale=rationale, base_ref=base_ref)
        suggestion = await self._new_suggestion(
            draft=draft, source="api", agent=actor.name, pre_review=True
        )
        blocked = suggestion.status is Status.BLOCKED
        await self._commit(
            "suggest.blocked" if blocked else "suggest.submitted",
            _summary(suggestion),
            suggestions=[suggestion],
        )
        return suggestion

    async def _pre_review(self, draft: Draft) -> list[Finding]:
        findings: list[Finding] = []
        for name, reg in self.registry.sources.items():
            backend = reg.backend
            if not isinstance(backend, PreReviewer):
                continue
            try:
                found = await self.registry.call(
                    reg.plugin,
                    "SuggestionSource.pre_review",
                    lambda b=backend: b.pre_review(self.settings.repo_path, draft),  # type: ignore[misc]
                )
            except StorykitError:
                continue  # recorded; a broken pre-reviewer must not block submissions
            findings.extend(dataclasses.replace(f, policy=f.policy or name) for f in found)
        return findings

    async def generate(
        self,
        actor: Principal,
        *,
        sources: Sequence[str] | None = None,
        paths: Sequence[str] = (),
    ) -> GenerateResult:
        """Run suggestion sources (all, or those named) over the repository or some paths."""
        actor.require(Role.REVIEWER)
        available = self.registry.sources
        names = list(sources) if sources else list(available)
        unknown = [n for n in names if n not in available]
        if unknown:
            raise Invalid(
                f"unknown source(s) {', '.join(map(repr, unknown))};"
                f" available: {', '.join(available) or 'none'}"
            )
        clean_paths = tuple(safe_repo_path(p) for p in paths)
        created: list[Suggestion] = []
        errors: list[str] = []
        for name in names:
            reg = available[name]

            async def progress(info: Mapping[str, Any], _name: str = name) -> None:
                await self.emit("suggest.progress", {"source": _name, **dict(info)})

            request = GenerateRequest(
                repo_path=self.settings.repo_path, paths=clean_paths, progress=progress
            )
            try:
                drafts = await self.registry.call(
                    reg.plugin,
                    "SuggestionSource.generate",
                    lambda b=reg.backend, r=request: b.generate(r),  # type: ignore[misc]
                )
            except StorykitError as exc:
                errors.append(f"source {name!r}: {exc.detail}")
                continue
            for draft in drafts:
                try:
                    created.append(
                        await self._new_suggestion(draft=draft, source=name, agent=f"source:{name}")
                    )
                except Invalid as exc:
                    errors.append(f"source {name!r} proposed an invalid suggestion: {exc.detail}")
        await self._commit(
            "suggest.generated",
            {
                "by": actor.name,
                "sources": names,
                "count": len(created),
                "ids": [s.id for s in created],
                "errors": errors,
            },
            suggestions=created,
        )
        return GenerateResult(suggestions=tuple(created), errors=tuple(errors))

    async def revise(
        self,
        actor: Principal,
        suggestion_id: str,
        *,
        diff: str,
        title: str | None = None,
        rationale: str | None = None,
    ) -> Suggestion:
        """The proposer submits a new version of its diff; earlier approvals stop counting."""
        actor.require(Role.AGENT)
        current = await self.get_suggestion(suggestion_id)
        if actor.name != current.agent:
            raise Forbidden(f"only the proposer ({current.agent!r}) can revise this suggestion")
        if current.status is Status.REJECTED:
            raise Conflict("this suggestion was rejected; submit a new one instead")
        return await self._new_revision(
            current, "suggest.revised", actor, diff=diff, title=title, rationale=rationale
        )

    async def _new_revision(
        self,
        current: Suggestion,
        event_type: str,
        actor: Principal,
        *,
        diff: str | None,
        title: str | None,
        rationale: str | None,
        extra_data: Mapping[str, Any] | None = None,
    ) -> Suggestion:
        draft = Draft(
            title=current.title if title is None else title,
            diff=current.diff if diff is None else diff,
            rationale=current.rationale if rationale is None else rationale,
            base_ref=current.base_ref,
        )
        fresh = await self._new_suggestion(
            draft=draft, source=current.source, agent=current.agent, pre_review=True
        )
        revised = dataclasses.replace(
            fresh,
            id=current.id,
            created_at=current.created_at,
            reviews=current.reviews,
            revision=current.revision + 1,
            metadata=current.metadata,
        )
        await self._commit(
            event_type,
            _summary(revised) | {"by": actor.name} | dict(extra_data or {}),
            suggestions=[revised],
            expect={current.id: current.updated_at},
        )
        return revised

    async def refine(
        self,
        actor: Principal,
        suggestion_id: str,
        *,
        instructions: str = "",
        refiner: str | None = None,
    ) -> Suggestion:
        """Ask the configured refiner (an LLM) to improve a suggestion."""
        actor.require(Role.REVIEWER)
        refiners = self.registry.refiners
        if not refiners:
            raise NotConfigured(
                "no refiner is configured. Set STORYKIT_LLM_BASE_URL and STORYKIT_LLM_MODEL"
                " (and STORYKIT_LLM_API_KEY if the endpoint needs one) for the"
                " openai-compatible refiner, or install a refiner plugin"
            )
        name = refiner or next(iter(refiners))
        if name not in refiners:
            raise Invalid(f"unknown refiner {name!r}; available: {', '.join(refiners)}")
        current = await self.get_suggestion(suggestion_id)
        instructions = _text(instructions, "instructions", MAX_TEXT)
        reg = refiners[name]
        result = await self.registry.call(
            reg.plugin,
            "Refiner.refine",
            lambda: reg.backend.refine(current, instructions),
            seconds=_backend_timeout(reg.backend, self.settings.hook_timeout),
        )
        if result.diff is not None:
            parse_diff(result.diff)
        return await self._new_revision(
            current,
            "suggest.refined",
            actor,
            diff=result.diff,
            title=result.title,
            rationale=result.rationale,
            extra_data={"refiner": name},
        )

    async def review(
        self, actor: Principal, suggestion_id: str, *, action: str, comment: str = ""
    ) -> Suggestion:
        """Approve, ask for a revision (comment required) or reject."""
        actor.require(Role.REVIEWER)
        act = _enum(Action, action, "action")
        if act is None:
            raise Invalid("action is required: approve, revise or reject")
        comment = _text(comment, "comment", MAX_TEXT)
        if act is Action.REVISE and not comment.strip():
            raise Invalid("asking for a revision needs a comment saying what to change")
        current = await self.get_suggestion(suggestion_id)
        if act is Action.APPROVE:
            if actor.name == current.agent:
                raise Forbidden("nobody can approve a suggestion they proposed")
            if current.status is Status.BLOCKED:
                raise Conflict("this suggestion is blocked by policy and cannot be approved")
            if current.status is Status.REJECTED:
                raise Conflict("this suggestion was rejected; it needs a new revision first")
        last = current.reviews[-1] if current.reviews else None
        if last is not None and (last.reviewer, last.action, last.diff_hash, last.comment) == (
            actor.name,
            act,
            current.diff_hash,
            comment,
        ):
            return current  # a replayed request: nothing changes, no second event
        review = Review(
            reviewer=actor.name, action=act, diff_hash=current.diff_hash, comment=comment
        )
        status = {
            Action.APPROVE: Status.APPROVED,
            Action.REVISE: Status.REVISION_REQUESTED,
            Action.REJECT: Status.REJECTED,
        }[act]
        if current.status is Status.BLOCKED and act is Action.REVISE:
            status = Status.BLOCKED
        updated = dataclasses.replace(
            current, reviews=(*current.reviews, review), status=status, updated_at=utcnow()
        )
        await self._commit(
            "suggest.reviewed",
            _summary(updated) | {"action": act.value, "by": actor.name, "comment": comment},
            suggestions=[updated],
            expect={current.id: current.updated_at},
        )
        return updated

    # -- plans ----------------------------------------------------------------
    async def plan(
        self, actor: Principal, *, goal: str, suggestion_ids: Sequence[str] | None = None
    ) -> Plan:
        """Turn a goal and approved suggestions (default: all approved) into variants."""
        actor.require(Role.REVIEWER)
        goal = _text(goal, "goal", MAX_TITLE, required=True)
        if suggestion_ids is None:
            chosen = await self._all_approved()
        else:
            ids = [check_id(i, "sug", what="suggestion id") for i in suggestion_ids]
            if len(set(ids)) != len(ids):
                raise Invalid("suggestion_ids lists a suggestion twice")
            chosen = [await self.get_suggestion(i) for i in ids]
        if not chosen:
            raise Conflict("there are no approved suggestions to plan with")
        not_ready = [s.id for s in chosen if s.status is not Status.APPROVED or not s.approvals]
        if not_ready:
            raise Conflict(f"not approved for their current diff: {', '.join(not_ready)}")
        if not self.registry.planners:
            raise NotConfigured("no planner is loaded; enable the 'planner' plugin")
        variants: list[Variant] = []
        for reg in self.registry.planners.values():
            made = await self.registry.call(
                reg.plugin,
                "Planner.plan",
                lambda r=reg: r.backend.plan(goal, chosen),  # type: ignore[misc]
            )
            variants.extend(dataclasses.replace(v, planner=v.planner or reg.name) for v in made)
        keys = [v.key for v in variants]
        if len(set(keys)) != len(keys):
            raise PluginError(
                "planners returned duplicate variant keys", plugin="planner", hook="plan"
            )
        plan = Plan(id=new_id("plan"), goal=goal, variants=tuple(variants), created_by=actor.name)
        await self._commit(
            "plan.created",
            {"id": plan.id, "goal": goal, "variants": keys, "by": actor.name},
            plans=[plan],
        )
        return plan

    async def _all_approved(self) -> list[Suggestion]:
        found: list[Suggestion] = []
        after: str | None = None
        while True:
            page = await self.store.list_suggestions(status=Status.APPROVED, after=after, limit=200)
            found.extend(page)
            if len(page) < 200:
                return list(reversed(found))  # oldest first: the order they were proposed
            after = page[-1].id

    async def select(self, actor: Principal, plan_id: str, *, variant: str) -> Plan:
        actor.require(Role.REVIEWER)
        current = await self.get_plan(plan_id)
        if current.variant(variant) is None:
            raise Invalid(
                f"plan {current.id} has no variant {variant!r};"
                f" it has {', '.join(v.key for v in current.variants)}"
            )
        if current.selected == variant:
            return current
        updated = dataclasses.replace(
            current, selected=variant, selected_by=actor.name, updated_at=utcnow()
        )
        await self._commit(
            "plan.selected",
            {"id": current.id, "variant": variant, "by": actor.name},
            plans=[updated],
            expect={current.id: current.updated_at},
        )
        return updated

    async def open_pr(
        self, actor: Principal, plan_id: str, *, variant: str | None = None, dry_run: bool = True
    ) -> PRResult:
        """Turn a variant (default: the selected one) into a branch or PR; dry-run by default."""
        actor.require(Role.REVIEWER)
        plan = await self.get_plan(plan_id)
        key = variant or plan.selected
        if key is None:
            raise Invalid("no variant given and none selected for this plan")
        chosen = plan.variant(key)
        if chosen is None:
            raise Invalid(f"plan {plan.id} has no variant {key!r}")
        suggestions = tuple([await self.get_suggestion(i) for i in chosen.suggestion_ids])
        stale = [s.id for s in suggestions if s.status is not Status.APPROVED or not s.approvals]
        if stale:
            raise Conflict(
                f"no longer approved for their current diff: {', '.join(stale)}; make a new plan"
            )
        backend_name = "dry-run" if dry_run else self.settings.pr_backend
        reg = self.registry.pr_backends.get(backend_name)
        if reg is None:
            raise NotConfigured(
                f"PR backend {backend_name!r} is not loaded; available:"
                f" {', '.join(self.registry.pr_backends) or 'none'} (set PR_BACKEND)"
            )
        base_refs = {s.base_ref for s in suggestions}
        base_ref = base_refs.pop() if len(base_refs) == 1 else "HEAD"
        request = PRRequest(
            repo_path=self.settings.repo_path,
            plan_id=plan.id,
            goal=plan.goal,
            variant=chosen,
            suggestions=suggestions,
            branch=_branch_name(plan.id, key),
            base_ref=base_ref,
            dry_run=dry_run,
            requested_by=actor.name,
            work_dir=self.settings.data_dir / "worktrees",
        )
        result = await self.registry.call(
            reg.plugin,
            "PRBackend.open",
            lambda: reg.backend.open(request),
            seconds=_backend_timeout(reg.backend, self.settings.hook_timeout),
        )
        await self._commit(
            "pr.dry_run" if result.dry_run else "pr.created",
            to_dict(result) | {"by": actor.name, "diff_hash": diff_hash(result.diff)},
        )
        return result


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


def _text(value: object, name: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string")
    if required and not value.strip():
        raise Invalid(f"{name} is required")
    if len(value) > limit:
        raise Invalid(f"{name} is too long ({len(value)} characters; the limit is {limit})")
    if "\x00" in value:
        raise Invalid(f"{name} contains a NUL character")
    return value


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
