"""The app factory: a fresh Quart app per call, each with its own metrics registry."""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pluggy
from quart import Quart
from quart_cors import cors
from quart_schema import Info, QuartSchema

import storykit
from storykit.auth import KeyRing, Role
from storykit.metrics import Metrics
from storykit.ratelimit import RateLimiter, open_limiter
from storykit.services import Storykit
from storykit.settings import Settings
from storykit_quart.access import PUBLIC, ROLE_ATTR
from storykit_quart.bodies import install_json_bodies
from storykit_quart.logs import flushing
from storykit_quart.openapi import SECURITY_SCHEMES, StorykitOpenAPI
from storykit_quart.pipeline import Pipeline, Route
from storykit_quart.problems import install_error_handlers
from storykit_quart.routes import findings, plans, policies, suggestions, system, ui, webhooks
from storykit_quart.sse import SSEMiddleware
from storykit_quart.state import HostState, Tickets

__all__ = ["create_app"]

# The two routes that are not Quart's: their roles and how the key may come.
EVENTS_ROUTE = Route(rule="/events", needs=Role.AGENT, limited=False, query_key=True)
MCP_ROUTE = Route(rule="/mcp", needs=Role.AGENT, bearer=True)
# Full collections are what pause a thousand open streams: with these thresholds the
# young generations are collected a tenth as often and the old one much less.
GC_THRESHOLDS = (7000, 20, 100)


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
    # Its app is set once the chain below is built.
    sse = SSEMiddleware(app.asgi_app, host)  # type: ignore[arg-type]
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
            sse.running(),
            flushing(),
        ):
            host.core = core
            host.limiter = limiter
            host.tickets = Tickets(core.store)
            # Everything made at start-up lives as long as the app: keep it out of the
            # collector's full passes, which otherwise pause a thousand open streams.
            if freeze_gc:
                gc.freeze()
                gc.set_threshold(*GC_THRESHOLDS)
            try:
                yield
            finally:
                host.end_streams()
                host.core = None

    extra = [(method, EVENTS_ROUTE) for method in ("GET", "HEAD")]
    handlers: dict[str, Any] = {EVENTS_ROUTE.rule: sse}
    quart_app = app.asgi_app
    if mcp is not None:
        mcp.wrap(quart_app)
        extra += [(m, MCP_ROUTE) for m in ("POST", "GET", "HEAD", "DELETE", "PUT", "PATCH")]
        handlers[MCP_ROUTE.rule] = mcp
    sse.app = quart_app  # type: ignore[assignment]
    app.asgi_app = Pipeline(  # type: ignore[method-assign,assignment]
        quart_app,  # type: ignore[arg-type]
        host,
        url_map=app.url_map,
        role_of=_roles(app, settings),
        extra=extra,
        handlers=handlers,
    )
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


_PUBLIC_ENDPOINTS = {"openapi", "static"}


def _roles(app: Quart, settings: Settings) -> Callable[[str], Role | None]:
    """The role each endpoint needs (None: no key), from the views' ``@requires``."""

    def role_of(endpoint: str) -> Role | None:
        if endpoint in _PUBLIC_ENDPOINTS:
            return None
        if endpoint == "system.metrics" and settings.metrics_public:
            return None
        needed = getattr(app.view_functions.get(endpoint), ROLE_ATTR, None)
        if needed == PUBLIC:
            return None
        return needed or Role.ADMIN  # a route that forgot to declare is admin-only

    return role_of
