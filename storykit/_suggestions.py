"""The suggestion use cases: submit, generate, revise, refine (reviews: :mod:`._review`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from storykit import comments, idempotency, rules
from storykit._base import MAX_TEXT, CoreBase, _backend_timeout, _summary, _text
from storykit._offload import off_loop
from storykit.auth import Principal, Role
from storykit.backends import Draft, GenerateRequest
from storykit.diffs import safe_repo_path
from storykit.errors import Conflict, Forbidden, Invalid, NotConfigured, NotFound, StorykitError
from storykit.filters import SuggestionFilter
from storykit.ids import check_id, new_id
from storykit.models import Revision, Status, Suggestion, utcnow

__all__ = ["GenerateResult", "SuggestionCases"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GenerateResult:
    run: str
    """The run's id (``run_…``), in each of its ``suggest.progress`` events and in its
    ``suggest.generated``: a watcher tells its own run from anyone else's by it."""
    suggestions: tuple[Suggestion, ...]
    """The suggestions stored: what the sources proposed that was not open already."""
    errors: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    """Open suggestions the sources proposed again, unchanged: stored once, not twice."""
    superseded: tuple[str, ...] = ()
    """Undecided suggestions marked superseded: their source proposes another change for
    the same place now (:func:`storykit.rules.triage`)."""


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
        event_type = "suggest.blocked" if blocked else "suggest.submitted"
        try:
            await self._commit(
                event_type,
                _summary(suggestion),
                suggestions=[suggestion],
                idempotency=None if once is None else once.result(suggestion),
                revisions=[Revision.of(suggestion, by=actor.name, via=event_type)],
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
        proposed: list[Suggestion] = []
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
                    proposed.append(
                        await self._new_suggestion(
                            draft=draft, source=name, agent=f"source:{name}", document=document
                        )
                    )
                except Invalid as exc:
                    errors.append(f"source {name!r} proposed an invalid suggestion: {exc.detail}")
        sorted_out = rules.triage(proposed, await self._open_of({s.source for s in proposed}))
        created = sorted_out.store
        await self._commit(
            "suggest.generated",
            {
                "run": run,
                "by": actor.name,
                "sources": names,
                "count": len(created),
                "ids": [s.id for s in created],
                "unchanged": len(sorted_out.unchanged),
                "errors": errors,
            },
            suggestions=created,
            revisions=[Revision.of(s, by=actor.name, via="suggest.generated") for s in created],
        )
        superseded = await self._supersede(sorted_out.superseded, run=run, actor=actor)
        return GenerateResult(
            run=run,
            suggestions=created,
            errors=tuple(errors),
            unchanged=sorted_out.unchanged,
            superseded=superseded,
        )

    async def _open_of(self, sources: set[str]) -> list[Suggestion]:
        """Every :data:`~storykit.rules.OPEN` suggestion of these sources."""
        found: list[Suggestion] = []
        for source in sorted(sources):
            for status in sorted(rules.OPEN):
                where = SuggestionFilter(source=source, status=status)
                after: str | None = None
                while True:
                    page = await self.store.list_suggestions(where, after=after, limit=200)
                    found.extend(page)
                    if len(page) < 200:
                        break
                    after = page[-1].id
        return found

    async def _supersede(
        self, replaced: Sequence[tuple[Suggestion, str]], *, run: str, actor: Principal
    ) -> tuple[str, ...]:
        """Mark each superseded, one ``suggest.superseded`` event each (one group commit);
        one a person decided on meanwhile is left as it is."""
        done: list[str] = []

        async def one(old: Suggestion, by: str) -> None:
            new = dataclasses.replace(
                old, status=Status.SUPERSEDED, superseded_by=by, updated_at=utcnow()
            )
            try:
                await self._commit(
                    "suggest.superseded",
                    _summary(new) | {"superseded_by": by, "run": run, "by": actor.name},
                    suggestions=[new],
                    expect={old.id: old.updated_at},
                )
            except Conflict:
                return
            done.append(old.id)

        async with anyio.create_task_group() as tg:
            for old, by in replaced:
                tg.start_soon(one, old, by)
        order = {old.id: n for n, (old, _) in enumerate(replaced)}
        return tuple(sorted(done, key=order.__getitem__))

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
        if current.status in (Status.REJECTED, Status.SUPERSEDED):
            raise Conflict(f"this suggestion was {current.status.value}; submit a new one instead")
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
        reviews = current.reviews
        if any(not c.outdated for r in reviews for c in r.comments):
            reviews = await off_loop(
                len(current.diff) + len(fresh.diff),
                lambda: comments.carry(current.reviews, current.diff, fresh.diff),
            )
        revised = dataclasses.replace(
            fresh,
            id=current.id,
            created_at=current.created_at,
            reviews=reviews,
            revision=current.revision + 1,
            metadata=current.metadata,
        )
        await self._commit(
            event_type,
            _summary(revised) | {"by": actor.name} | dict(extra_data or {}),
            suggestions=[revised],
            expect={current.id: current.updated_at},
            idempotency=None if once is None else once.result(revised),
            revisions=[
                *await self._unkept(current),
                Revision.of(revised, by=actor.name, via=event_type),
            ],
        )
        return revised

    async def _unkept(self, current: Suggestion) -> list[Revision]:
        """The current revision, if it was stored before revisions were kept: kept now, with
        what is known of it, so the next one can be compared with it."""
        try:
            await self.store.get_revision(current.id, current.revision)
        except NotFound:
            return [Revision.of(current, by=current.agent, via="")]
        return []

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
