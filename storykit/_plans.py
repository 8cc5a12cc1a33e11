"""The plan use cases: plan, select a variant, open a PR."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import anyio.to_thread

from storykit import rules
from storykit._base import (
    MAX_TITLE,
    _backend_timeout,
    _branch,
    _branch_name,
    _text,
)
from storykit._tracking import TrackingCases
from storykit.auth import Principal, Role
from storykit.backends import Planner, PRRequest
from storykit.combine import FilePatch, derive_variant
from storykit.diffs import diff_hash
from storykit.errors import Conflict, Invalid, NotConfigured, PluginError
from storykit.filters import SuggestionFilter
from storykit.ids import check_id, new_id
from storykit.models import Plan, PRResult, Status, Suggestion, Variant, to_dict, utcnow
from storykit.plugins import Registered

__all__ = ["PlanCases"]


class PlanCases(TrackingCases):
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
        not_ready = [s.id for s in chosen if not rules.approved_for_current_diff(s)]
        if not_ready:
            raise Conflict(f"not approved for their current diff: {', '.join(not_ready)}")
        if not self.registry.planners:
            raise NotConfigured("no planner is loaded; enable the 'planner' plugin")
        # Planners group and order; the core derives each variant's diff from the approved
        # diffs it names (SPEC §4), so a planner never authors a line that ships.
        allowed = {s.id for s in chosen}
        owners: dict[str, Registered[Planner]] = {}  # variant key -> who returned it
        grouped: list[Variant] = []
        for reg in self.registry.planners.values():
            made = await self.registry.call(
                reg.plugin,
                "Planner.plan",
                lambda r=reg: r.backend.plan(goal, chosen),  # type: ignore[misc]
            )
            for v in made if isinstance(made, (list, tuple)) else [made]:
                problem = _unusable(v, allowed, owners, reg)
                if problem:
                    message = f"planner {reg.name!r} {problem}"
                    self.registry.record_failure(reg.plugin, "Planner.plan", message)
                    raise PluginError(message, plugin=reg.plugin, hook="Planner.plan")
                owners[v.key] = reg
                grouped.append(
                    dataclasses.replace(v, suggestion_ids=tuple(v.suggestion_ids), planner=reg.name)
                )
        patches: dict[str, list[FilePatch]] = {}  # each diff parsed once for every variant
        variants = await anyio.to_thread.run_sync(
            lambda: [derive_variant(v, chosen, patches) for v in grouped]
        )
        keys = [v.key for v in variants]
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
        approved = SuggestionFilter(status=Status.APPROVED)
        while True:
            page = await self.store.list_suggestions(approved, after=after, limit=200)
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
        self,
        actor: Principal,
        plan_id: str,
        *,
        variant: str | None = None,
        dry_run: bool = True,
        branch: str | None = None,
    ) -> PRResult:
        """Turn a variant (default: the selected one) into a branch or PR; dry-run by default.

        ``branch`` names the branch (default, or empty: ``storykit/<plan>-<variant>``, which
        a backend suffixes ``-2``, … when it is taken; a chosen name is used exactly)."""
        actor.require(Role.REVIEWER)
        given = branch is not None and branch != ""
        chosen_branch = _branch(branch) if given else None
        if not dry_run and self.settings.pr_backend == "dry-run":
            raise NotConfigured(
                "a real run needs a real PR backend: set PR_BACKEND=git (a local branch) or"
                " github/gitlab (a pull request) and restart; PR_BACKEND is 'dry-run', which"
                " only previews"
            )
        plan = await self.get_plan(plan_id)
        key = variant or plan.selected
        if key is None:
            raise Invalid("no variant given and none selected for this plan")
        chosen = plan.variant(key)
        if chosen is None:
            raise Invalid(f"plan {plan.id} has no variant {key!r}")
        hashes = chosen.suggestion_hashes
        if set(hashes) != set(chosen.suggestion_ids):
            raise Conflict(
                f"plan {plan.id} does not record which version of each suggestion variant"
                f" {key!r} holds (an earlier storykit made it); make a new plan"
            )
        suggestions = tuple([await self.get_suggestion(i) for i in chosen.suggestion_ids])
        stale = [
            s.id
            for s in suggestions
            if s.diff_hash != hashes[s.id] or not rules.approved_for_current_diff(s)
        ]
        if stale:
            raise Conflict(
                f"changed or no longer approved for their current diff since plan {plan.id}"
                f" was made: {', '.join(stale)}; make a new plan"
            )
        derived = await anyio.to_thread.run_sync(derive_variant, chosen, suggestions)
        if (derived.suggestion_ids, derived.diff) != (chosen.suggestion_ids, chosen.diff):
            raise Conflict(
                f"the stored diff of variant {key!r} is not what its approved suggestions"
                f" combine to; make a new plan"
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
            branch=chosen_branch or _branch_name(plan.id, key),
            branch_given=given,
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
        if not isinstance(result, PRResult) or result.diff != chosen.diff:
            message = (
                f"PR backend {backend_name!r} reported a diff that is not the approved diff of"
                f" variant {key!r} it was given; storykit did not record this run (check branch"
                f" {request.branch!r} and anything the backend opened)"
            )
            self.registry.record_failure(reg.plugin, "PRBackend.open", message)
            raise PluginError(message, plugin=reg.plugin, hook="PRBackend.open")
        if not dry_run and result.dry_run:
            message = (
                f"PR backend {backend_name!r} was asked for a real run but reported a dry run;"
                f" nothing was recorded (check PR_BACKEND: it must name a backend that creates"
                f" branches or pull requests)"
            )
            self.registry.record_failure(reg.plugin, "PRBackend.open", message)
            raise PluginError(message, plugin=reg.plugin, hook="PRBackend.open")
        data = to_dict(result) | {"by": actor.name, "diff_hash": diff_hash(result.diff)}
        if result.dry_run:
            await self._commit("pr.dry_run", data)
        else:  # a pull request it opened is kept on the plan, to follow (storykit.pulls)
            await self._record_opened(plan.id, backend_name, result, actor, data)
        return result


def _unusable(
    v: object, allowed: set[str], owners: dict[str, Registered[Planner]], reg: Registered[Planner]
) -> str | None:
    """Why the core cannot take variant ``v`` from planner ``reg``, or None."""
    if not isinstance(v, Variant):
        return f"returned {type(v).__name__!r}, not a Variant"
    if not isinstance(v.key, str) or not v.key:
        return "returned a variant with no key"
    if v.key in owners:
        other = owners[v.key]
        if other is reg:
            return f"returned variant key {v.key!r} twice"
        who = f"plugin {other.plugin!r}" if other.plugin != reg.plugin else "its plugin"
        return (
            f"returned variant key {v.key!r}, which {who} already returned (planner"
            f" {other.name!r}); variant keys must be unique within a plan, so prefix them"
        )
    ids = tuple(v.suggestion_ids)
    unknown = [str(i) for i in ids if i not in allowed]
    if unknown:
        return (
            f"put {', '.join(unknown)} in variant {v.key!r}, which is not one of the approved"
            " suggestions it was given; a planner can only group and order those"
        )
    if len(set(ids)) != len(ids):
        return f"named a suggestion twice in variant {v.key!r}"
    return None
