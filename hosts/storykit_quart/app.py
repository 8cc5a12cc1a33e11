"""The app factory: a fresh Quart app per call, each with its own metrics registry."""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pluggy
from quart import Quart, Response, current_app, g, request
from quart_cors import cors
from quart_schema import Info, QuartSchema

import storykit
from storykit.auth import KeyRing, Principal, Role
from storykit.errors import RateLimited
from storykit.metrics import Metrics
from storykit.ratelimit import RateLimiter, open_limiter
from storykit.services import Storykit
from storykit.settings import Settings
from storykit_quart.access import PUBLIC, ROLE_ATTR
from storykit_quart.bodies import install_json_bodies
from storykit_quart.keepalive import CloseOnUnreadBody
from storykit_quart.openapi import SECURITY_SCHEMES, StorykitOpenAPI
from storykit_quart.problems import install_error_handlers
from storykit_quart.routes import findings, plans, policies, suggestions, system, ui, webhooks
from storykit_quart.sse import SSEMiddleware
from storykit_quart.state import HostState, Tickets

__all__ = ["create_app"]

_REQUEST_ID = re.compile(r"\A[A-Za-z0-9._:-]{1,128}\Z")


def create_app(
    settings: Settings,
    *,
    plugin_manager: pluggy.PluginManager | None = None,
    trio: bool = False,
    freeze_gc: bool = False,
) -> Quart:
    """Build the web host. ``trio=True`` makes a quart-trio app for Hypercorn's trio worker;
    ``freeze_gc=True`` (what ``storykit serve`` uses) freezes start-up objects for the GC."""
    if trio:
        from quart_trio import QuartTrio

        app: Quart = QuartTrio("storykit_quart")
    else:
        app = Quart("storykit_quart")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    metrics = Metrics()
    host = HostState(
        settings=settings,
        keys=KeyRing(settings.api_keys, test_mode=settings.test_mode),
        limiter=RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst),
        metrics=metrics,
    )
    app.extensions["storykit"] = host
    mcp = app.extensions["storykit_mcp"] = _mcp_mount(host)

    # quart-schema wraps make_response to convert pydantic return values; every route
    # here returns plain dicts, so keep Quart's own (it was a quarter of a GET's cost).
    plain_make_response = app.make_response
    QuartSchema(
        app,
        info=Info(title="storykit", version=storykit.__version__),
        security_schemes=dict(SECURITY_SCHEMES),
        security=[{"apiKey": []}],
        openapi_provider_class=StorykitOpenAPI,
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    app.make_response = plain_make_response  # type: ignore[method-assign]
    for module in (suggestions, findings, plans, policies, system, ui, webhooks):
        app.register_blueprint(module.bp)
    install_error_handlers(app)
    install_json_bodies(app)
    if settings.cors_origins:
        app = cors(
            app,
            allow_origin=[_origin_pattern(o) for o in settings.cors_origins],
            allow_headers=[
                "X-API-Key",
                "Content-Type",
                "X-Request-Id",
                "Last-Event-ID",
                "Idempotency-Key",
                "If-Match",
            ],
            expose_headers=["X-Request-Id", "Retry-After", "RateLimit", "RateLimit-Policy", "ETag"],
            allow_methods=["GET", "POST", "PUT"],
            max_age=600,
        )

    @app.while_serving  # type: ignore[type-var]  # Quart's hint predates async generators
    async def lifespan() -> AsyncIterator[None]:
        async with (
            Storykit.open(
                settings, plugin_manager=plugin_manager, metrics=metrics, run_observers=True
            ) as core,
            open_limiter(settings, core.store) as limiter,
            mcp.running() if mcp is not None else contextlib.nullcontext(),
        ):
            host.core = core
            host.limiter = limiter
            host.tickets = Tickets(core.store)
            # Everything made at start-up lives as long as the app: keep it out of the
            # collector's full passes, which otherwise pause a thousand open streams.
            if freeze_gc:
                gc.freeze()
            try:
                yield
            finally:
                host.end_streams()
                host.core = None

    app.before_request(_before)
    app.after_request(_after)
    if mcp is not None:
        app.asgi_app = mcp.wrap(app.asgi_app)  # type: ignore[method-assign]
    app.asgi_app = SSEMiddleware(app.asgi_app, host)  # type: ignore[method-assign,assignment,arg-type]
    app.asgi_app = CloseOnUnreadBody(app.asgi_app)  # type: ignore[method-assign,assignment,arg-type]
    return app


def _mcp_mount(host: HostState) -> Any:
    """``/mcp`` for coding agents, or None when the ``mcp`` extra is not installed (the
    SDK is imported only here, so a plain install serves everything else)."""
    try:
        from storykit_mcp.http import MCPMount
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in ("mcp", "mcp_types", "storykit_mcp"):
            return None
        raise
    return MCPMount(host)


def _origin_pattern(origin: str) -> Any:
    if origin.endswith("://*"):
        return re.compile(re.escape(origin[:-1]) + r"[^/]+")
    return origin


_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)


def _new_request_id() -> str:
    """32 hex characters: a per-process random prefix and a counter (no syscall per request)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


_PUBLIC_ENDPOINTS = {"openapi", "static"}


async def _before() -> None:
    g.started = time.perf_counter()
    incoming = request.headers.get("X-Request-Id", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else _new_request_id()
    g.principal = None
    endpoint = request.endpoint
    if endpoint is None or request.method == "OPTIONS":
        return  # no such route (404 follows) or a CORS preflight
    host: HostState = current_app.extensions["storykit"]
    view = current_app.view_functions.get(endpoint)
    needed = getattr(view, ROLE_ATTR, None)
    if needed == PUBLIC or endpoint in _PUBLIC_ENDPOINTS:
        return
    if endpoint == "system.metrics" and host.settings.metrics_public:
        return
    principal: Principal = host.keys.lookup(request.headers.get("X-API-Key"))
    g.principal = principal
    decision = await host.limiter.check(principal.name)
    g.rate = decision
    if not decision.allowed:
        host.metrics.rate_limited.labels(agent=principal.name).inc()
        raise RateLimited(
            f"more than {host.settings.rate_limit_rps:g} requests/s from {principal.name!r}",
            retry_after=decision.retry_after,
        )
    principal.require(needed or Role.ADMIN)  # a route that forgot to declare is admin-only


async def _after(response: Response) -> Response:
    host: HostState = current_app.extensions["storykit"]
    response.headers["X-Request-Id"] = g.get("request_id", "")
    decision = g.get("rate")
    if decision is not None:
        response.headers["RateLimit-Policy"] = host.limiter.policy
        response.headers["RateLimit"] = (
            f'"default";r={decision.remaining};t={max(0, math.ceil(decision.reset))}'
        )
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    status = str(response.status_code)
    host.metrics.http_requests.labels(route=rule, method=request.method, status=status).inc()
    host.metrics.http_latency.labels(route=rule, status=status).observe(elapsed)
    principal = g.get("principal")
    host.log.info(
        "request",
        method=request.method,
        route=rule,
        path=request.path,  # never the query string: it may hold a key or a ticket
        status=response.status_code,
        ms=round(elapsed * 1000, 2),
        agent=principal.name if principal else None,
        request_id=g.get("request_id"),
    )
    return response
