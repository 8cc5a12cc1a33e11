"""``/mcp``: the MCP endpoint (streamable HTTP, stateless, JSON answers) in front of a web app.

A raw ASGI dispatch by path, like ``GET /events``: the SDK's session manager answers
``/mcp`` and everything else goes on to the app. The key check comes first, with the
app's own :class:`~storykit.auth.KeyRing` (constant time) and rate limiter, so ``/mcp``
takes the same keys and roles as the rest of the API (``X-API-Key``, or
``Authorization: Bearer``); a refusal is problem+json like everywhere else. Stateless:
each POST is one exchange on a fresh transport, so any replica can answer any call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import anyio
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from storykit.auth import KeyRing, Principal
from storykit.errors import (
    NotConfigured,
    PayloadTooLarge,
    RateLimited,
    StorykitError,
    Unauthorized,
)
from storykit.metrics import Metrics
from storykit.ratelimit import Limiter
from storykit.services import Storykit
from storykit.settings import Settings
from storykit_mcp.gateway import Gateway
from storykit_mcp.local import CoreGateway
from storykit_mcp.server import build_server

__all__ = ["PATH", "MCPMount"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/mcp"
_PRINCIPAL = "storykit.principal"  # the scope key the key check leaves for the tools
_REQUEST_ID = re.compile(r"\A[A-Za-z0-9._:-]{1,128}\Z")


class Host(Protocol):
    """What the mount needs from the web host (its ``HostState``)."""

    settings: Settings
    keys: KeyRing
    limiter: Limiter
    metrics: Metrics
    log: Any
    streams: set[anyio.CancelScope]

    def require_core(self) -> Storykit: ...


def _presented_key(scope: Scope) -> str | None:
    key: str | None = None
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return str(value.decode("latin-1"))
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                key = token.strip()
    return key


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            with contextlib.suppress(ValueError):
                return int(value)
    return 0  # chunked: the SDK's own limit (the same number) cuts it off


class MCPMount:
    """Serves ``/mcp`` and passes everything else to ``app`` (see :meth:`wrap`).

    :meth:`running` must be entered inside the app's serving lifespan: it runs the
    SDK's session manager (its task group serves the calls).
    """

    def __init__(self, host: Host) -> None:
        self.host = host
        self.app: ASGIApp | None = None
        self.server = build_server(self._gateway)
        self._manager: StreamableHTTPSessionManager | None = None

    def wrap(self, app: ASGIApp) -> MCPMount:
        self.app = app
        return self

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        sdk = logging.getLogger("mcp")
        if sdk.level == logging.NOTSET:
            # It logs each stateless exchange at INFO; our request line already says it.
            sdk.setLevel(logging.WARNING)
        manager = StreamableHTTPSessionManager(
            app=self.server,
            stateless=True,
            json_response=True,
            max_request_body_size=self.host.settings.max_body_bytes,
        )
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    def _gateway(self, request: Any) -> Gateway:
        principal = request.scope.get(_PRINCIPAL) if request is not None else None
        if not isinstance(principal, Principal):  # never: the key check ran first
            raise Unauthorized("missing API key: send it in the X-API-Key header")
        return CoreGateway(self.host.require_core(), principal, stops=self.host.streams)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            assert self.app is not None, "call wrap(app) first"
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = incoming.decode("latin-1")
        if not _REQUEST_ID.match(request_id):
            request_id = secrets.token_hex(16)
        status = 500
        principal: Principal | None = None

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            principal = await self._authenticate(scope)
            if scope["method"] != "POST":
                # Stateless: no session to end (DELETE), no stream to open (GET).
                raise _MethodNotAllowed("/mcp takes POST: each call is one JSON-RPC exchange")
            if _declared_length(scope) > self.host.settings.max_body_bytes:
                raise PayloadTooLarge("the request body is larger than MAX_BODY_BYTES allows")
            manager = self._manager
            if manager is None:
                raise NotConfigured("the server is starting or stopping; try again shortly")
            await manager.handle_request({**scope, _PRINCIPAL: principal}, receive, tracking_send)
        except StorykitError as exc:
            await _refuse(tracking_send, exc)
        finally:
            self._record(scope, status, started, principal, request_id)

    async def _authenticate(self, scope: Scope) -> Principal:
        host = self.host
        principal = host.keys.lookup(_presented_key(scope))
        decision = await host.limiter.check(principal.name)
        if not decision.allowed:
            host.metrics.rate_limited.labels(agent=principal.name).inc()
            raise RateLimited(
                f"more than {host.settings.rate_limit_rps:g} requests/s from {principal.name!r}",
                retry_after=decision.retry_after,
            )
        return principal  # every key has at least the agent role, all the tools need

    def _record(
        self,
        scope: Scope,
        status: int,
        started: float,
        principal: Principal | None,
        request_id: str,
    ) -> None:
        elapsed = time.perf_counter() - started
        metrics = self.host.metrics
        method = scope["method"]
        metrics.http_requests.labels(route=PATH, method=method, status=str(status)).inc()
        metrics.http_latency.labels(route=PATH, status=str(status)).observe(elapsed)
        self.host.log.info(
            "request",
            method=method,
            route=PATH,
            path=PATH,
            status=status,
            ms=round(elapsed * 1000, 2),
            agent=principal.name if principal else None,
            request_id=request_id,
        )


async def _refuse(send: Send, exc: StorykitError) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": exc.title, "status": exc.status, "detail": exc.detail}
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if isinstance(exc, RateLimited):
        headers.append((b"retry-after", str(max(1, math.ceil(exc.retry_after))).encode()))
    if exc.status == 401:
        headers.append((b"www-authenticate", b'APIKey header="X-API-Key"'))
    if exc.status == 405:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _MethodNotAllowed(StorykitError):
    status = 405
    title = "Method not allowed"
