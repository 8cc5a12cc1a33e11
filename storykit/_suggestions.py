"""The suggestion use cases: submit, generate, revise, refine, review."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from storykit import idempotency, rules
from storykit._base import MAX_TEXT, CoreBase, _backend_timeout, _enum, _summary, _text
from storykit.auth import Principal, Role
from storykit.backends import Draft, GenerateRequest
from storykit.diffs import safe_repo_path
from storykit.errors import Conflict, Forbidden, Invalid, NotConfigured, StorykitError
from storykit.ids import check_id, new_id
from storykit.models import Action, Review, Status, Suggestion, utcnow

__all__ = ["GenerateResult", "SuggestionCases"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GenerateResult:
    run: str
    """The run's id (``run_…``), in each of its ``suggest.progress`` events and in its
    ``suggest.generated``: a watcher tells its own run from anyone else's by it."""
    suggestions: tuple[Suggestion, ...]
    errors: tuple[str, ...] = ()


class SuggestionCases(CoreBase):
    async def submit(
        self,
        actor: Principal,
        *,
        title: str,
        diff: str,
        rationale: str = "",
        base_ref: str = "HEAD",
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """An external agent proposes a diff. It is screened against the repository and stored.

        With ``idempotency_key``, a retry of the same request returns the first result
        and writes nothing (:mod:`storykit.idempotency`).
        """
        actor.require(Role.AGENT)
        fields = {"title": title, "diff": diff, "rationale": rationale, "base_ref": base_ref}
        once = idempotency.request(actor, idempotency.SUBMIT, idempotency_key, fields)
        if (first := await idempotency.replay(self.store, once)) is not None:
            return first
        draft = Draft(title=title, diff=diff, rationale=rationale, base_ref=base_ref)
        suggestion = await self._new_suggestion(
            draft=draft, source="api", agent=actor.name, outside=True
        )
        blocked = suggestion.status is Status.BLOCKED
        try:
            await self._commit(
                "suggest.blocked" if blocked else "suggest.submitted",
                _summary(suggestion),
                suggestions=[suggestion],
                idempotency=None if once is None else once.result(suggestion),
            )
        except StorykitError as exc:
            return await idempotency.winner(self.store, once, exc)
        return suggestion

    async def generate(
        self,
        actor: Principal,
        *,
        sources: Sequence[str] | None = None,
        paths: Sequence[str] = (),
        run: str | None = None,
    ) -> GenerateResult:
        """Run suggestion sources (all, or those named) over the repository or some paths.

        ``run`` names the run in its events (default: a new ``run_…`` id). A caller that
        watches the event stream for the run's progress picks it before it starts, so it
        can tell its run's events from those of others running at the same time.
        """
        actor.require(Role.REVIEWER)
        run = check_id(run, "run", what="run") if run is not None else new_id("run")
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
        document = await self.policy_document()  # once for the run, not once per draft
        for name in names:
            reg = available[name]

            async def progress(info: Mapping[str, Any], _name: str = name) -> None:
                # The run last, so a source's own keys can never claim another run.
                await self.emit("suggest.progress", {"source": _name, **dict(info), "run": run})

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
                        await self._new_suggestion(
                            draft=draft, source=name, agent=f"source:{name}", document=document
                        )
                    )
                except Invalid as exc:
                    errors.append(f"source {name!r} proposed an invalid suggestion: {exc.detail}")
        await self._commit(
            "suggest.generated",
            {
                "run": run,
                "by": actor.name,
                "sources": names,
                "count": len(created),
                "ids": [s.id for s in created],
                "errors": errors,
            },
            suggestions=created,
        )
        return GenerateResult(run=run, suggestions=tuple(created), errors=tuple(errors))

    async def revise(
        self,
        actor: Principal,
        suggestion_id: str,
        *,
        diff: str,
        title: str | None = None,
        rationale: str | None = None,
        idempotency_key: str | None = None,
    ) -> Suggestion:
        """The proposer submits a new version of its diff; earlier approvals stop counting.

        ``idempotency_key`` works as for :meth:`submit`.
        """
        actor.require(Role.AGENT)
        fields = {"id": suggestion_id, "diff": diff, "title": title, "rationale": rationale}
        once = idempotency.request(actor, idempotency.REVISE, idempotency_key, fields)
        if (first := await idempotency.replay(self.store, once)) is not None:
            return first
        current = await self.get_suggestion(suggestion_id)
        if actor.name != current.agent:
            raise Forbidden(f"only the proposer ({current.agent!r}) can revise this suggestion")
        if current.status is Status.REJECTED:
            raise Conflict("this suggestion was rejected; submit a new one instead")
        try:
            return await self._new_revision(
                current,
                "suggest.revised",
                actor,
                diff=diff,
                title=title,
                rationale=rationale,
                once=once,
            )
        except StorykitError as exc:
            return await idempotency.winner(self.store, once, exc)

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
        once: idempotency.IdempotentRequest | None = None,
    ) -> Suggestion:
        draft = Draft(
            title=current.title if title is None else title,
            diff=current.diff if diff is None else diff,
            rationale=current.rationale if rationale is None else rationale,
            base_ref=current.base_ref,
        )
        fresh = await self._new_suggestion(
            draft=draft, source=current.source, agent=current.agent, outside=True
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
            idempotency=None if once is None else once.result(revised),
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
        return await self._new_revision(  # which checks and parses a new diff
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
        current = await self.get_suggestion(suggestion_id)
        rules.check_decision(actor, current, act, comment)
        if rules.is_replay(actor, current, act, comment):
            return current  # a retried request: nothing changes, no second event
        review = Review(
            reviewer=actor.name,
            action=act,
            diff_hash=current.diff_hash,
            comment=comment,
            revision=current.revision,
        )
        status = rules.status_after(current.status, act)
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
