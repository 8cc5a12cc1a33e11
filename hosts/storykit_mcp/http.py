"""``/mcp``: the MCP endpoint (streamable HTTP, stateless, JSON answers) in front of a web app.

A raw ASGI dispatch by path, like ``GET /events``: the SDK's session manager answers
``/mcp`` and everything else goes on to the app. The web host's request pipeline runs
first (``storykit_quart.pipeline``): the request id, the key check with the app's own
:class:`~storykit.auth.KeyRing` (``X-API-Key``, or ``Authorization: Bearer``), the rate
limit, the log line and the metrics, as for every route; it leaves the checked caller
in the scope. A refusal here (405, 413) is problem+json like everywhere else. Stateless:
each POST is one exchange on a fresh transport, so any replica can answer any call.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import anyio
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from storykit.auth import KeyRing, Principal
from storykit.errors import NotConfigured, PayloadTooLarge, StorykitError, Unauthorized
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
_PRINCIPAL = "storykit.principal"  # the scope key this mount leaves for the tools
_CALL = "storykit.call"  # where the web host's pipeline leaves the checked caller


class Host(Protocol):
    """What the mount needs from the web host (its ``HostState``)."""

    settings: Settings
    keys: KeyRing
    limiter: Limiter
    metrics: Metrics
    log: Any
    streams: set[anyio.CancelScope]

    def require_core(self) -> Storykit: ...


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
        call = scope.get(_CALL)
        principal = getattr(call, "principal", None)
        try:
            if not isinstance(principal, Principal):  # never behind the pipeline
                raise Unauthorized("missing API key: send it in the X-API-Key header")
            if scope["method"] != "POST":
                # Stateless: no session to end (DELETE), no stream to open (GET).
                raise _MethodNotAllowed("/mcp takes POST: each call is one JSON-RPC exchange")
            if _declared_length(scope) > self.host.settings.max_body_bytes:
                raise PayloadTooLarge("the request body is larger than MAX_BODY_BYTES allows")
            manager = self._manager
            if manager is None:
                raise NotConfigured("the server is starting or stopping; try again shortly")
            await manager.handle_request({**scope, _PRINCIPAL: principal}, receive, send)
        except StorykitError as exc:
            await _refuse(send, exc, getattr(call, "request_id", None))


async def _refuse(send: Send, exc: StorykitError, request_id: str | None) -> None:
    problem = {
        "type": "about:blank",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
    }
    if request_id:
        problem["request_id"] = request_id
    body = json.dumps(problem).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if exc.status == 405:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _MethodNotAllowed(StorykitError):
    status = 405
    title = "Method not allowed"
