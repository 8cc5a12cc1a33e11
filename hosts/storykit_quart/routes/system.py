"""Health, metrics, plugins, the event log and SSE tickets."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response
from quart_schema import document_response, tag, validate_querystring

import storykit
from storykit import replies
from storykit.auth import Role
from storykit.metrics import CONTENT_TYPE
from storykit.ratelimit import RedisRateLimiter
from storykit_quart.access import actor, core, public, requires, state
from storykit_quart.schemas import EventLogQuery, EventPage, Health, Me, PluginsReply, Ticket

bp = Blueprint("system", __name__)


@bp.get("/health")
@document_response(Health)
@document_response(Health, 503)
@tag(["system"])
@public
async def health() -> tuple[dict[str, Any], int]:
    """Liveness and readiness: 200 when the database (and Redis, with ``REDIS_URL``)
    answers within seconds, 503 when not; ``database`` and ``redis`` say which. A load
    balancer's health check."""
    host = state()
    database = host.core is not None and await host.core.store.ping()
    body: dict[str, Any] = {
        "version": storykit.__version__,
        "database": "ok" if database else "unavailable",
    }
    ready = database
    if isinstance(host.limiter, RedisRateLimiter):  # REDIS_URL: rate limits live there
        redis = await host.limiter.ping()
        body["redis"] = "ok" if redis else "unavailable"
        ready = ready and redis
    return {"status": "ok" if ready else "unavailable"} | body, 200 if ready else 503


@bp.get("/metrics")
@tag(["system"])
@requires(Role.AGENT)
async def metrics() -> Response:
    """Prometheus text format. Needs no key unless ``METRICS_PUBLIC=false``."""
    await core().refresh_gauges()
    return Response(state().metrics.render(), content_type=CONTENT_TYPE)


@bp.get("/plugins")
@document_response(PluginsReply)
@tag(["system"])
@requires(Role.AGENT)
async def plugins() -> dict[str, Any]:
    """Loaded plugins, the hooks each implements, recent plugin errors, and the PR backend
    a real run uses."""
    return replies.plugins_reply(core())


@bp.get("/me")
@document_response(Me)
@tag(["system"])
@requires(Role.AGENT)
async def me() -> dict[str, Any]:
    """Who this key is: its name (the identity in reviews and limits) and its role."""
    principal = actor()
    return {"name": principal.name, "role": principal.role.value}


@bp.get("/events/log")
@document_response(EventPage)
@tag(["events"])
@requires(Role.AGENT)
@validate_querystring(EventLogQuery)
async def event_log(query_args: EventLogQuery) -> dict[str, Any]:
    """Stored events with ``id > after``, oldest first: recovery after a gap; the audit trail.

    ``head`` is the newest id in the log (read after the page, so no item is above it).
    """
    return await replies.event_log(core(), after=query_args.after, limit=query_args.limit)


@bp.post("/events/ticket")
@document_response(Ticket)
@tag(["events"])
@requires(Role.AGENT)
async def event_ticket() -> dict[str, Any]:
    """A single-use ticket for ``GET /events?ticket=…``, valid for 60 seconds."""
    tickets = state().tickets
    return {"ticket": await tickets.issue(actor()), "expires_in": int(tickets.ttl)}
