"""Plans, variants and PRs."""

from __future__ import annotations

from quart import Blueprint
from quart_schema import document_response, tag, validate_querystring, validate_request

from storykit import replies
from storykit.auth import Role
from storykit.models import Plan, PRResult, to_dict
from storykit_quart.access import Reply, actor, core, requires
from storykit_quart.schemas import PageQuery, PlanBody, PlanPage, PRBody, SelectBody

bp = Blueprint("plans", __name__)


@bp.post("/plan")
@document_response(Plan, 201)
@tag(["plans"])
@requires(Role.REVIEWER)
@validate_request(PlanBody)
async def create_plan(data: PlanBody) -> Reply:
    """A goal plus approved suggestions (default: all approved) → a plan with variants."""
    plan = await core().plan(actor(), goal=data.goal, suggestion_ids=data.suggestion_ids)
    return to_dict(plan), 201


@bp.get("/plans")
@document_response(PlanPage)
@tag(["plans"])
@requires(Role.AGENT)
@validate_querystring(PageQuery)
async def list_plans(query_args: PageQuery) -> Reply:
    """Plans, newest first; ``head`` is the newest event id when the list was read."""
    return await replies.plan_page(core(), after=query_args.after, limit=query_args.limit)


@bp.get("/plans/<plan_id>")
@document_response(Plan)
@tag(["plans"])
@requires(Role.AGENT)
async def get_plan(plan_id: str) -> Reply:
    """One plan with its variants."""
    return to_dict(await core().get_plan(plan_id))


@bp.post("/plans/<plan_id>/select")
@document_response(Plan)
@tag(["plans"])
@requires(Role.REVIEWER)
@validate_request(SelectBody)
async def select(plan_id: str, data: SelectBody) -> Reply:
    """Choose a variant."""
    return to_dict(await core().select(actor(), plan_id, variant=data.variant))


@bp.post("/dev/pr-from-plan")
@document_response(PRResult)
@tag(["plans"])
@requires(Role.REVIEWER)
@validate_request(PRBody)
async def pr_from_plan(data: PRBody) -> Reply:
    """Turn a variant into a branch or PR. ``dry_run`` (the default) says what it would do."""
    result = await core().open_pr(
        actor(), data.plan_id, variant=data.variant, dry_run=data.dry_run, branch=data.branch
    )
    return to_dict(result)
