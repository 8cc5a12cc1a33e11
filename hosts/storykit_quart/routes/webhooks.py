"""Forge webhooks: ``POST /webhooks/github`` and ``POST /webhooks/gitlab``.

No API key: the delivery's signature (GitHub's ``X-Hub-Signature-256``) or token
(GitLab's ``X-Gitlab-Token``) is its authentication, checked by the core against the
secret from the settings before anything is read. The route hands the raw body over
untouched (the signature covers its exact bytes) and renders what the core did.
"""

from __future__ import annotations

from quart import Blueprint, Response, request
from quart_schema import document_response, tag

from storykit._tracking import WebhookOutcome
from storykit.errors import Unauthorized
from storykit.models import to_dict
from storykit_quart.access import Reply, core, public
from storykit_quart.problems import problem

__all__ = ["bp"]

bp = Blueprint("webhooks", __name__)


async def _receive(forge: str) -> Reply | Response:
    body = await request.get_data(cache=False, as_text=False, parse_form_data=False)
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        outcome = await core().receive_webhook(forge, headers=headers, body=body)
    except Unauthorized as exc:
        # Not the API key's 401: no WWW-Authenticate naming X-API-Key.
        return problem(401, exc.title, exc.detail)
    return to_dict(outcome), outcome.status


@bp.post("/webhooks/github")
@document_response(WebhookOutcome, 200)
@document_response(WebhookOutcome, 202)
@tag(["webhooks"])
@public
async def github() -> Reply | Response:
    """A GitHub webhook delivery (``pull_request``, ``check_suite``, ``check_run``), signed
    with ``STORYKIT_GITHUB_WEBHOOK_SECRET``: 401 unless ``X-Hub-Signature-256`` is the body's
    HMAC-SHA256; 202 when it is about no pull request storykit opened; a replayed
    ``X-GitHub-Delivery`` changes nothing."""
    return await _receive("github")


@bp.post("/webhooks/gitlab")
@document_response(WebhookOutcome, 200)
@document_response(WebhookOutcome, 202)
@tag(["webhooks"])
@public
async def gitlab() -> Reply | Response:
    """A GitLab webhook delivery (``Merge Request Hook``, ``Pipeline Hook``): 401 unless
    ``X-Gitlab-Token`` is ``STORYKIT_GITLAB_WEBHOOK_SECRET``; 202 when it is about no merge
    request storykit opened; a replayed ``Idempotency-Key`` (or ``X-Gitlab-Event-UUID``)
    changes nothing."""
    return await _receive("gitlab")
