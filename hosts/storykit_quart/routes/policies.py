"""The policy document: read, replace, and check a diff against it."""

from __future__ import annotations

from typing import Any

from quart import Blueprint
from quart_schema import document_response, tag, validate_request

from storykit.auth import Role
from storykit.models import PolicyDecision, to_dict
from storykit_quart.access import actor, core, requires
from storykit_quart.schemas import CheckBody, PoliciesBody, PolicyDocument

bp = Blueprint("policies", __name__)


@bp.get("/policies")
@document_response(PolicyDocument)
@tag(["policies"])
@requires(Role.AGENT)
async def get_policies() -> dict[str, Any]:
    """The effective policy document and its version."""
    return await core().get_policies()


@bp.put("/policies")
@document_response(PolicyDocument)
@tag(["policies"])
@requires(Role.ADMIN)
@validate_request(PoliciesBody)
async def put_policies(data: PoliciesBody) -> dict[str, Any]:
    """Replace the policy document. Every section is validated before anything is saved."""
    return await core().set_policies(actor(), data.root)


@bp.post("/policies/check")
@document_response(PolicyDecision)
@tag(["policies"])
@requires(Role.AGENT)
@validate_request(CheckBody)
async def check(data: CheckBody) -> dict[str, Any]:
    """Evaluate a diff against the current policies without storing it."""
    decision = await core().check_diff(
        diff=data.diff, title=data.title, rationale=data.rationale, agent=actor().name
    )
    return to_dict(decision)
