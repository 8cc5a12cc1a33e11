"""The policy document: read, replace, and check a diff against it."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request
from quart_schema import document_response, tag, validate_request

from storykit.auth import Role
from storykit.models import PolicyDecision, to_dict
from storykit_quart.access import Reply, actor, core, requires
from storykit_quart.schemas import CheckBody, PoliciesBody, PolicyDocument

bp = Blueprint("policies", __name__)


def _tagged(document: dict[str, Any]) -> Reply:
    """The document with its version as the ``ETag``."""
    return document, 200, {"ETag": f'"{document["version"]}"'}


def _if_match(header: str | None) -> list[str] | None:
    """The entity tags of ``If-Match``: ``*``, or the quoted versions (a weak ``W/``
    tag never matches, as RFC 9110 asks of ``If-Match``)."""
    if header is None:
        return None
    if header.strip() == "*":
        return ["*"]
    tags = [tag.strip() for tag in header.split(",")]
    return [t[1:-1] for t in tags if len(t) >= 2 and t[0] == t[-1] == '"']


@bp.get("/policies")
@document_response(PolicyDocument)
@tag(["policies"])
@requires(Role.AGENT)
async def get_policies() -> Reply:
    """The effective policy document and its version (also the ``ETag``)."""
    return _tagged(await core().get_policies())


@bp.put("/policies")
@document_response(PolicyDocument)
@tag(["policies"])
@requires(Role.ADMIN)
@validate_request(PoliciesBody)
async def put_policies(data: PoliciesBody) -> Reply:
    """Replace the policy document. Every section is validated before anything is saved.

    The body is the bare sections (policy name → settings) or what ``GET`` returned,
    edited (``{"version", "policies"}``). Its ``version``, and ``If-Match`` (the
    ``ETag`` of ``GET``), must be the current version, else 412 and nothing is saved.
    """
    saved = await core().set_policies(
        actor(), data.root, if_match=_if_match(request.headers.get("If-Match"))
    )
    return _tagged(saved)


@bp.post("/policies/check")
@document_response(PolicyDecision)
@tag(["policies"])
@requires(Role.AGENT)
@validate_request(CheckBody)
async def check(data: CheckBody) -> dict[str, Any]:
    """Evaluate a diff against the current policies without storing it."""
    decision = await core().check_diff(
        diff=data.diff,
        title=data.title,
        rationale=data.rationale,
        agent=actor().name,
        base_ref=data.base_ref,
    )
    return to_dict(decision)
