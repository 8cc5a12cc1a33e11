"""The review use cases: decide (one suggestion, or many at once), and read a suggestion's
revisions and what changed between two of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from storykit import comments as line_comments
from storykit import rules
from storykit._base import MAX_TEXT, CoreBase, _enum, _summary, _text
from storykit._offload import off_loop
from storykit.auth import Principal, Role
from storykit.errors import Invalid, NotFound, StorykitError
from storykit.filters import SuggestionFilter
from storykit.interdiff import Interdiff, interdiff
from storykit.models import Action, Review, Revision, Suggestion, to_dict, utcnow

__all__ = ["MAX_BULK", "BulkItem", "ReviewCases"]

MAX_BULK = 200
"""The most suggestions one bulk decision takes (a filter's page)."""
_BULK_AT_ONCE = 8
"""Decisions of one bulk request in flight together: they share group commits."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class BulkItem:
    """One suggestion's outcome in a bulk decision: the suggestion after it, or why not."""

    id: str
    ok: bool
    status: str | None = None
    """The suggestion's status after the decision (when ``ok``)."""
    problem: Mapping[str, Any] | None = None
    """Why it was refused (when not ``ok``): ``{type, title, status, detail}``, the
    problem the single decision would have answered with."""


class ReviewCases(CoreBase):
    async def review(
        self,
        actor: Principal,
        suggestion_id: str,
        *,
        action: str,
        comment: str = "",
        comments: object = (),
    ) -> Suggestion:
        """Approve, ask for a revision (saying what to change) or reject.

        ``comments`` are line comments (``{"file", "line", "side", "body"}``, see
        :mod:`storykit.comments`), each on a line the current diff shows on its side.
        """
        actor.require(Role.REVIEWER)
        act = _enum(Action, action, "action")
        if act is None:
            raise Invalid("action is required: approve, revise or reject")
        comment = _text(comment, "comment", MAX_TEXT)
        notes = line_comments.parse(comments)
        current = await self.get_suggestion(suggestion_id)
        rules.check_decision(actor, current, act, comment, notes)
        if notes:
            await off_loop(len(current.diff), lambda: line_comments.anchor(notes, current.diff))
        if rules.is_replay(actor, current, act, comment, notes):
            return current  # a retried request: nothing changes, no second event
        review = Review(
            reviewer=actor.name,
            action=act,
            diff_hash=current.diff_hash,
            comment=comment,
            revision=current.revision,
            comments=notes,
        )
        status = rules.status_after(current.status, act)
        updated = dataclasses.replace(
            current, reviews=(*current.reviews, review), status=status, updated_at=utcnow()
        )
        await self._commit(
            "suggest.reviewed",
            _summary(updated)
            | {"action": act.value, "by": actor.name, "comment": comment, "comments": len(notes)},
            suggestions=[updated],
            expect={current.id: current.updated_at},
        )
        return updated

    async def review_many(
        self,
        actor: Principal,
        *,
        action: str,
        comment: str = "",
        ids: Sequence[str] | None = None,
        where: SuggestionFilter | None = None,
        limit: int = MAX_BULK,
    ) -> list[BulkItem]:
        """One decision on several suggestions: those ``ids`` name, or (at most ``limit``,
        newest first) those ``where`` matches. Each is decided as :meth:`review` decides
        one, with its own event; one refused (not found, your own proposal, blocked by
        policy…) is reported with its problem and the others go on."""
        actor.require(Role.REVIEWER)
        if (ids is None) == (where is None):
            raise Invalid("say which suggestions: give ids or a filter (one of them)")
        if _enum(Action, action, "action") is None:
            raise Invalid("action is required: approve, revise or reject")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_BULK:
            raise Invalid(f"limit must be a whole number from 1 to {MAX_BULK}")
        if ids is not None:
            if not isinstance(ids, Sequence) or isinstance(ids, str) or not ids:
                raise Invalid("ids must be a non-empty list of suggestion ids")
            if len(ids) > MAX_BULK:
                raise Invalid(f"one bulk decision takes at most {MAX_BULK} ids, not {len(ids)}")
            chosen = list(dict.fromkeys(ids))
        else:
            chosen = [s.id for s in await self.store.list_suggestions(where, limit=limit)]
        results: dict[str, BulkItem] = {}
        limiter = anyio.CapacityLimiter(_BULK_AT_ONCE)

        async def one(suggestion_id: str) -> None:
            async with limiter:
                try:
                    s = await self.review(actor, suggestion_id, action=action, comment=comment)
                except StorykitError as exc:
                    results[suggestion_id] = BulkItem(
                        id=suggestion_id, ok=False, problem=_problem(exc)
                    )
                else:
                    results[suggestion_id] = BulkItem(id=s.id, ok=True, status=s.status.value)

        async with anyio.create_task_group() as tg:
            for suggestion_id in chosen:
                tg.start_soon(one, suggestion_id)
        return [results[i] for i in chosen]

    # -- revisions ----------------------------------------------------------------------
    async def list_revisions(self, suggestion_id: str) -> list[Revision]:
        """Every kept revision, oldest first; the current one always among them."""
        current = await self.get_suggestion(suggestion_id)
        kept = await self.store.list_revisions(current.id)
        if not kept or kept[-1].number != current.revision:
            # Stored before storykit kept revisions: only the current one is known.
            kept.append(_current(current))
        return kept

    async def get_revision(self, suggestion_id: str, number: object) -> Revision:
        current = await self.get_suggestion(suggestion_id)
        n = _number(number, "revision")
        try:
            return await self.store.get_revision(current.id, n)
        except NotFound:
            if n == current.revision:
                return _current(current)
            gone = " (it was stored before storykit kept revisions)" if n < current.revision else ""
            raise NotFound(
                f"{current.id} has no revision {n}{gone}; its current revision is"
                f" {current.revision}"
            ) from None

    async def interdiff(
        self, suggestion_id: str, *, start: int | None = None, end: int | None = None
    ) -> dict[str, Any]:
        """What changed from revision ``start`` to ``end`` (default: the one before the
        current, and the current): the diff between the files each produces."""
        current = await self.get_suggestion(suggestion_id)
        end = current.revision if end is None else _number(end, "to")
        start = end - 1 if start is None else _number(start, "from")
        if start < 1:
            raise Invalid(f"{current.id} has only revision 1: nothing came before it")
        a = await self.get_revision(current.id, start)
        b = await self.get_revision(current.id, end)
        result: Interdiff = await off_loop(
            len(a.diff) + len(b.diff), lambda: interdiff(a.diff, b.diff)
        )
        return {"id": current.id, "from": start, "to": end} | to_dict(result)


def _current(s: Suggestion) -> Revision:
    """The current revision of a suggestion stored before revisions were kept."""
    return Revision.of(s, by=s.agent, via="")


def _number(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1_000_000:
        raise Invalid(f"{name} must be a revision number from 1")
    return value


def _problem(exc: StorykitError) -> dict[str, Any]:
    return {"type": "about:blank", "title": exc.title, "status": exc.status, "detail": exc.detail}
