"""One request pipeline for every route, ``/events`` and ``/mcp`` included: raw ASGI in
front of Quart.

Once per request, before any route runs: the request id (the client's ``X-Request-Id``
when it is a sane token, else a new one), the route's rule and the role it needs, the key
lookup (``X-API-Key``; also ``?key=`` or ``?ticket=`` on ``/events``, whose browser client
cannot send headers, and ``Authorization: Bearer`` on ``/mcp``), the rate limit. Then, on
the way out: ``X-Request-Id`` and the ``RateLimit`` headers on the answer, one JSON log
line, the request counter and latency histogram, and ``Connection: close`` on an answer
sent before the request's body was read.

Why that last one: a refusal (401, 403, 413, 429, …) is answered before the body is read.
The unread rest of the body then stands between this request and the next on the
connection, so Hypercorn closes it (or, on its trio worker, waits for a body nobody
reads), and a client that reuses the connection fails its next request with "server
disconnected". ``Connection: close`` lets the client open a new connection instead.

A refusal (401, 403, 429) is answered here, as problem+json, so it costs no Quart request
at all. Quart still routes, validates and runs the view; a view reads who called from
:func:`storykit_quart.access.actor`, which finds the :class:`Call` this module left in the
ASGI scope. ``/events`` is never rate limited: a browser's ``EventSource`` gives up on a
429 instead of retrying (decision 0003); its log line and count come when the stream ends.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RoutingException

from storykit.auth import Principal, Role
from storykit.errors import RateLimited, StorykitError, Unauthorized
from storykit.ratelimit import Decision
from storykit_quart.cors import allowed_origin
from storykit_quart.state import HostState

__all__ = ["CALL", "Call", "Pipeline", "Route", "new_request_id", "problem_body"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = logging.getLogger("storykit.http")

CALL = "storykit.call"
"""The scope key under which the pipeline leaves the :class:`Call` for the app."""

_REQUEST_ID = re.compile(r"\A[A-Za-z0-9._:-]{1,128}\Z")
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(1)
_UNMATCHED = "unmatched"
_EXPOSED = b"X-Request-Id, Retry-After, RateLimit, RateLimit-Policy, ETag"


def new_request_id() -> str:
    """32 hex characters: a per-process random prefix and a counter (no syscall per request)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Route:
    """What the pipeline needs to know about a route before the app sees the request."""

    rule: str
    """The route template: the ``route`` label of the metrics and the log line."""
    needs: Role | None
    """The least role a key must have; None: no key needed."""
    limited: bool = True
    query_key: bool = False
    """The key may come as ``?key=`` or ``?ticket=`` (``/events``)."""
    bearer: bool = False
    """The key may come as ``Authorization: Bearer`` (``/mcp``)."""


class Call:
    """Who is calling, left in the scope for the app (``scope[CALL]``)."""

    __slots__ = ("principal", "request_id", "route")

    def __init__(self, request_id: str, route: Route | None) -> None:
        self.request_id = request_id
        self.route = route
        self.principal: Principal | None = None


class _Internal(StorykitError):
    status = 500
    title = "Internal error"

    def __init__(self) -> None:
        super().__init__("something went wrong on the server; see its log")


def problem_body(exc: StorykitError, request_id: str | None) -> bytes:
    import json

    body: dict[str, Any] = {
        "type": "about:blank",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
    }
    if request_id:
        body["request_id"] = request_id
    return json.dumps(body).encode()


RoleOf = Callable[[str], Role | None]
"""The role an endpoint (a Quart view's name) needs, None when it needs no key."""


class _Routes:
    """The app's URL map, matched once per request: a dict for the rules without
    parameters, werkzeug's matcher for the others. Built at the first request, once
    every blueprint is registered."""

    def __init__(self, url_map: Map, role_of: RoleOf, extra: Iterable[tuple[str, Route]]) -> None:
        self._url_map = url_map
        self._role_of = role_of
        self._extra = {(method, route.rule): route for method, route in extra}
        self._static: dict[tuple[str, str], Route] | None = None
        self._dynamic: dict[str, Route] = {}
        self._adapter: Any = None

    def _build(self) -> dict[tuple[str, str], Route]:
        static: dict[tuple[str, str], Route] = {}
        for rule in self._url_map.iter_rules():
            route = Route(rule=rule.rule, needs=self._role_of(str(rule.endpoint)))
            if rule.arguments:
                self._dynamic[str(rule.endpoint)] = route
            else:
                for method in rule.methods or ():
                    static[(method, rule.rule)] = route
        static.update(self._extra)
        self._adapter = self._url_map.bind("localhost")
        return static

    def match(self, method: str, path: str) -> Route | None:
        static = self._static
        if static is None:
            static = self._static = self._build()
        route = static.get((method, path))
        if route is not None or not self._dynamic:
            return route
        try:
            rule, _ = self._adapter.match(path, method, return_rule=True)
        except (HTTPException, RoutingException):
            return None  # no such route, or not that method: Quart answers as problem+json
        return self._dynamic.get(str(rule.endpoint))


class Pipeline:
    """The ASGI middleware: see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        host: HostState,
        *,
        url_map: Map,
        role_of: RoleOf,
        extra: Iterable[tuple[str, Route]] = (),
        handlers: Mapping[str, ASGIApp] | None = None,
    ) -> None:
        self.app = app
        self.host = host
        # The routes that are not Quart's (``/events``, ``/mcp``), by rule: called directly,
        # so an ordinary request passes through no other layer on its way to Quart.
        self.handlers = dict(handlers or {})
        self.routes = _Routes(url_map, role_of, extra)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        host = self.host
        method: str = scope["method"]
        key: str | None = None
        bearer: str | None = None
        origin: bytes | None = None
        request_id: str | None = None
        has_body = False
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key = value.decode("latin-1")
            elif name == b"x-request-id":
                text = value.decode("latin-1")
                if _REQUEST_ID.match(text):
                    request_id = text
            elif name == b"authorization":
                bearer = value.decode("latin-1")
            elif name == b"origin":
                origin = value
            elif name == b"transfer-encoding" or (
                name == b"content-length" and value.strip() != b"0"
            ):
                has_body = True
        if request_id is None:
            request_id = new_request_id()
        route = self.routes.match(method, scope["path"])
        call = Call(request_id, route)
        scope[CALL] = call
        status = 500
        decision: Decision | None = None
        # HTTP/2 and 3 frame each request's body on their own stream, and forbid the header.
        watch_body = has_body and scope.get("http_version") in ("1.0", "1.1")
        received = not watch_body

        async def tracking_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                received = True
            return message

        async def pipeline_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                if decision is not None:
                    headers.append((b"ratelimit-policy", host.limiter.policy.encode()))
                    headers.append(
                        (
                            b"ratelimit",
                            b'"default";r=%d;t=%d'
                            % (decision.remaining, max(0, math.ceil(decision.reset))),
                        )
                    )
                if not received:
                    headers = [h for h in headers if h[0].lower() != b"connection"]
                    headers.append((b"connection", b"close"))
                message["headers"] = headers  # each sender makes its message afresh
            await send(message)

        pipeline_send.__wrapped__ = send  # type: ignore[attr-defined]  # for _transport
        try:
            if route is not None and route.needs is not None and method != "OPTIONS":
                try:
                    principal = await self._principal(scope, route, key, bearer)
                    call.principal = principal
                    if route.limited:
                        decision = await host.limiter.check(principal.name)
                        if not decision.allowed:
                            host.metrics.rate_limited.labels(agent=principal.name).inc()
                            raise RateLimited(
                                f"more than {host.settings.rate_limit_rps:g} requests/s"
                                f" from {principal.name!r}",
                                retry_after=decision.retry_after,
                            )
                    principal.require(route.needs)
                except StorykitError as exc:
                    await self._refuse(pipeline_send, exc, request_id, origin)
                    return
                except Exception:  # a limiter or ticket store that broke: as a route would
                    _log.exception("unhandled error", extra={"request_id": request_id})
                    await self._refuse(pipeline_send, _Internal(), request_id, origin)
                    return
            app = self.handlers.get(route.rule, self.app) if route is not None else self.app
            await app(scope, tracking_receive if watch_body else receive, pipeline_send)
        finally:
            self._record(method, scope["path"], route, status, started, call)

    async def _principal(
        self, scope: Scope, route: Route, key: str | None, bearer: str | None
    ) -> Principal:
        host = self.host
        if key is None and route.bearer and bearer is not None:
            scheme, _, token = bearer.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                key = token.strip()
        if key is None and route.query_key and scope.get("query_string"):
            query = parse_qs(scope["query_string"].decode("latin-1"))
            ticket = (query.get("ticket") or [None])[0]
            if ticket:
                principal = await host.tickets.redeem(ticket)
                if principal is None:
                    raise Unauthorized("the ticket is unknown, used or expired; get a new one")
                return principal
            key = (query.get("key") or [None])[0]
        return host.keys.lookup(key)

    async def _refuse(
        self, send: Send, exc: StorykitError, request_id: str, origin: bytes | None
    ) -> None:
        body = problem_body(exc, request_id)
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", b"%d" % len(body)),
        ]
        if isinstance(exc, RateLimited):
            headers.append((b"retry-after", b"%d" % max(1, math.ceil(exc.retry_after))))
        if exc.status == 401:
            headers.append((b"www-authenticate", b'APIKey header="X-API-Key"'))
        origins = self.host.settings.cors_origins
        if origin is not None and origins and allowed_origin(origin.decode("latin-1"), origins):
            # Quart's CORS extension never sees a refusal: without these a browser could
            # not read why it was refused.
            headers += [
                (b"access-control-allow-origin", origin),
                (b"access-control-expose-headers", _EXPOSED),
                (b"vary", b"Origin"),
            ]
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _record(
        self,
        method: str,
        path: str,
        route: Route | None,
        status: int,
        started: float,
        call: Call,
    ) -> None:
        elapsed = time.perf_counter() - started
        rule = route.rule if route is not None else _UNMATCHED
        children = self._children.get((rule, method, status))
        if children is None:
            metrics = self.host.metrics
            label = str(status)
            children = (
                metrics.http_requests.labels(route=rule, method=method, status=label),
                metrics.http_latency.labels(route=rule, status=label),
            )
            if len(self._children) < 4096:  # methods are the client's: keep this bounded
                self._children[(rule, method, status)] = children
        children[0].inc()
        children[1].observe(elapsed)
        write = self.host.request_line
        if write is not None:
            principal = call.principal
            write(
                {
                    "method": method,
                    "route": rule,
                    "path": path,  # never the query string: it may hold a key or a ticket
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    "agent": principal.name if principal else None,
                    "request_id": call.request_id,
                }
            )
