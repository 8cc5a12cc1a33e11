"""Suggestions: submit, list, read, revise, revisions and interdiff, generate, refine,
review (one or many)."""

from __future__ import annotations

from quart import Blueprint, request
from quart_schema import document_response, tag, validate_querystring, validate_request

from storykit import replies
from storykit.auth import Role
from storykit.filters import SuggestionFilter
from storykit.models import Revision, Suggestion, to_dict
from storykit_quart.access import Reply, actor, core, requires
from storykit_quart.schemas import (
    BulkReply,
    BulkReviewBody,
    GenerateBody,
    GenerateReply,
    InterdiffQuery,
    InterdiffReply,
    RefineBody,
    ReviewBody,
    RevisionBody,
    RevisionList,
    SubmitBody,
    SuggestionPage,
    SuggestionQuery,
)

bp = Blueprint("suggestions", __name__)


@bp.post("/suggestions")
@document_response(Suggestion, 201)
@tag(["suggestions"])
@requires(Role.AGENT)
@validate_request(SubmitBody)
async def submit(data: SubmitBody) -> Reply:
    """An external agent submits a suggestion; it is pre-reviewed and screened by policy.

    Answers 201 with the stored suggestion; a suggestion policy blocks is stored with
    status ``blocked`` and its findings. With an ``Idempotency-Key`` header, a retry of
    the same request answers what the first did and stores nothing; the same key with
    a different body is refused with 422.
    """
    s = await core().submit(
        actor(),
        title=data.title,
        diff=data.diff,
        rationale=data.rationale,
        base_ref=data.base_ref,
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return to_dict(s), 201


@bp.get("/suggestions")
@document_response(SuggestionPage)
@tag(["suggestions"])
@requires(Role.AGENT)
@validate_querystring(SuggestionQuery)
async def list_suggestions(query_args: SuggestionQuery) -> Reply:
    """Suggestions, newest first. Filter by status, source, agent, risk; page with ``after``.

    ``head`` is the newest event id when the list was read: subscribe from it.
    """
    where = SuggestionFilter.parse(query_args.model_dump())
    return await replies.suggestion_page(
        core(), where, after=query_args.after, limit=query_args.limit
    )


@bp.get("/suggestions/<suggestion_id>")
@document_response(Suggestion)
@tag(["suggestions"])
@requires(Role.AGENT)
async def get_suggestion(suggestion_id: str) -> Reply:
    """One suggestion with its diff, findings and review history."""
    return to_dict(await core().get_suggestion(suggestion_id))


@bp.post("/suggestions/<suggestion_id>/revisions")
@document_response(Suggestion, 201)
@tag(["suggestions"])
@requires(Role.AGENT)
@validate_request(RevisionBody)
async def revise(suggestion_id: str, data: RevisionBody) -> Reply:
    """The proposer submits a new version of its diff; earlier approvals stop counting.

    Honours ``Idempotency-Key`` as ``POST /suggestions`` does.
    """
    s = await core().revise(
        actor(),
        suggestion_id,
        diff=data.diff,
        title=data.title,
        rationale=data.rationale,
        idempotency_key=request.headers.get("Idempotency-Key"),
    )
    return to_dict(s), 201


@bp.get("/suggestions/<suggestion_id>/revisions")
@document_response(RevisionList)
@tag(["suggestions"])
@requires(Role.AGENT)
async def list_revisions(suggestion_id: str) -> Reply:
    """Every revision of the suggestion (diff, hash, title, rationale, who made it and when),
    oldest first. One stored before storykit kept revisions lists its current one only."""
    return replies.revisions_reply(await core().list_revisions(suggestion_id))


# ``<number>``, not ``<int:number>``: quart-schema documents a converter after another
# parameter under the wrong path; the core checks the number and says what is wrong.
@bp.get("/suggestions/<suggestion_id>/revisions/<number>")
@document_response(Revision)
@tag(["suggestions"])
@requires(Role.AGENT)
async def get_revision(suggestion_id: str, number: str) -> Reply:
    """One revision of the suggestion (404 if it has no such one)."""
    n: object = int(number) if number.isascii() and number.isdigit() else number
    return to_dict(await core().get_revision(suggestion_id, n))


@bp.get("/suggestions/<suggestion_id>/interdiff")
@document_response(InterdiffReply)
@tag(["suggestions"])
@requires(Role.AGENT)
@validate_querystring(InterdiffQuery)
async def interdiff(suggestion_id: str, query_args: InterdiffQuery) -> Reply:
    """What changed from revision ``from`` to revision ``to``: the diff between the files
    each produces, not two diffs side by side (default: the previous and the current)."""
    return await core().interdiff(suggestion_id, start=query_args.from_, end=query_args.to)


@bp.post("/suggest/generate")
@document_response(GenerateReply)
@tag(["suggestions"])
@requires(Role.REVIEWER)
@validate_request(GenerateBody)
async def generate(data: GenerateBody) -> Reply:
    """Run suggestion sources (all, or those named) over the repository or some paths.

    Progress is streamed as ``suggest.progress`` events meanwhile, each with the
    run's id (``run``, the one given or a new one): a watcher follows its own run by it.
    """
    result = await core().generate(actor(), sources=data.sources, paths=data.paths, run=data.run)
    return replies.generate_reply(result)


@bp.post("/suggest/llm")
@document_response(Suggestion)
@tag(["suggestions"])
@requires(Role.REVIEWER)
@validate_request(RefineBody)
async def refine(data: RefineBody) -> Reply:
    """Refine one suggestion with the configured refiner (503 says how to configure one)."""
    s = await core().refine(actor(), data.id, instructions=data.instructions, refiner=data.refiner)
    return to_dict(s)


@bp.post("/suggest/review")
@document_response(Suggestion)
@tag(["suggestions"])
@requires(Role.REVIEWER)
@validate_request(ReviewBody)
async def review(data: ReviewBody) -> Reply:
    """Approve, ask for a revision (saying what to change) or reject.

    ``comments`` anchor remarks to lines of the current diff (file, line, side); each
    must be a line the diff shows on that side, or nothing is stored (422).
    """
    s = await core().review(
        actor(),
        data.id,
        action=data.action,
        comment=data.comment,
        comments=[c.model_dump() for c in data.comments],
    )
    return to_dict(s)


@bp.post("/suggest/review/bulk")
@document_response(BulkReply)
@tag(["suggestions"])
@requires(Role.REVIEWER)
@validate_request(BulkReviewBody)
async def review_bulk(data: BulkReviewBody) -> Reply:
    """One decision on several suggestions: those ``ids`` name, or those ``filter``
    matches (at most ``limit``, newest first), with one ``comment``.

    Answers 200 with each one's outcome on its own: ``ok`` with its new status, or
    refused with the problem deciding on it alone would answer (your own proposal 403,
    blocked by policy 409, not found 404…). Each decision is one ``suggest.reviewed``
    event, as a single review is; a retry of the same request decides nothing twice.
    """
    where = None if data.filter is None else SuggestionFilter.parse(data.filter.model_dump())
    items = await core().review_many(
        actor(),
        action=data.action,
        comment=data.comment,
        ids=data.ids,
        where=where,
        limit=data.limit,
    )
    return replies.bulk_reply(items)
