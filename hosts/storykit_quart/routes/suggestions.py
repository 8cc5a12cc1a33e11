"""Suggestions: submit, list, read, revise, generate, refine, review."""

from __future__ import annotations

from quart import Blueprint, request
from quart_schema import document_response, tag, validate_querystring, validate_request

from storykit import replies
from storykit.auth import Role
from storykit.filters import SuggestionFilter
from storykit.models import Suggestion, to_dict
from storykit_quart.access import Reply, actor, core, requires
from storykit_quart.schemas import (
    GenerateBody,
    GenerateReply,
    RefineBody,
    ReviewBody,
    RevisionBody,
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
    """Approve, ask for a revision (``comment`` required) or reject."""
    s = await core().review(actor(), data.id, action=data.action, comment=data.comment)
    return to_dict(s)
