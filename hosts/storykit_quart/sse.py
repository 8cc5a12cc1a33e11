"""``GET /events``: the live event stream, as a small raw-ASGI handler in front of Quart.

Why not a Quart route: a stream needs a timeout on every send (so a stalled client
is dropped instead of holding its queue) and a prompt end when the client goes away
or the server shuts down. Owning the ``send``/``receive`` loop makes both direct,
and keeps an idle subscriber down to its queue, one task and a few frames.

Wire format: ``retry:`` at open; each event as ``id: N`` + ``data: {"id","type","at","data"}``
(no ``event:`` field, so a browser's ``onmessage`` sees them all); when the
subscriber's queue overflowed, ``event: gap`` with ``{"first_id","last_id","count"}``
so the client can fetch them from ``/events/log``; ``:-hb`` comments while idle.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import anyio

from storykit.errors import StorykitError, Unauthorized
from storykit.events import Gap
from storykit.models import Event, to_dict
from storykit_quart.cors import allowed_origin
from storykit_quart.state import HostState

__all__ = ["SSEMiddleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SEND_TIMEOUT = 10.0
RETRY_MS = 2000
PATH = "/events"


def _frame(item: Event | Gap, cache: dict[int, bytes]) -> bytes:
    if isinstance(item, Gap):
        payload = {"first_id": item.first_id, "last_id": item.last_id, "count": item.count}
        return b"event: gap\ndata: " + json.dumps(payload).encode() + b"\n\n"
    frame = cache.get(item.id)
    if frame is None:
        # Encoded once per event, not once per subscriber: with a thousand streams
        # open this was a fifth of the server's CPU.
        data = json.dumps(to_dict(item), separators=(",", ":"), ensure_ascii=False)
        frame = f"id: {item.id}\ndata: {data}\n\n".encode()
        cache[item.id] = frame
        if len(cache) > _FRAME_CACHE:
            del cache[next(iter(cache))]  # the oldest: dicts keep insertion order
    return frame


_FRAME_CACHE = 256


class SSEMiddleware:
    """Serves ``GET /events`` itself and passes everything else to the Quart app."""

    def __init__(self, app: ASGIApp, state: HostState) -> None:
        self.app = app
        self.state = state
        self._frames: dict[int, bytes] = {}  # per app: ids repeat across databases

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)  # Quart answers 405 as problem+json
            return
        await self.stream(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> tuple[Any, int | None]:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        ticket = (query.get("ticket") or [None])[0]
        if ticket:
            principal = await self.state.tickets.redeem(ticket)
            if principal is None:
                raise Unauthorized("the ticket is unknown, used or expired; get a new one")
        else:
            key = headers.get("x-api-key") or (query.get("key") or [None])[0]
            principal = self.state.keys.lookup(key)
        raw_last = headers.get("last-event-id") or (query.get("last_event_id") or [None])[0]
        last: int | None = None
        if raw_last not in (None, ""):
            try:
                last = int(str(raw_last))
            except ValueError:
                last = -1
            if last < 0:
                raise _BadRequest("Last-Event-ID must be a whole number of 0 or more")
        return principal, last

    async def _refuse(self, send: Send, exc: StorykitError) -> None:
        body = json.dumps(
            {"type": "about:blank", "title": exc.title, "status": exc.status, "detail": exc.detail}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": exc.status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        try:
            _principal, last_event_id = await self._authenticate(scope)
        except StorykitError as exc:
            await self._refuse(send, exc)
            return
        core = state.require_core()
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store, no-transform"),  # proxies must not gzip-buffer
            (b"x-accel-buffering", b"no"),
        ]
        origin = next((v for k, v in scope["headers"] if k == b"origin"), None)
        if origin is not None and allowed_origin(
            origin.decode("latin-1"), state.settings.cors_origins
        ):
            headers += [(b"access-control-allow-origin", origin), (b"vary", b"Origin")]
        heartbeat = state.settings.sse_heartbeat_interval
        started = False
        stop = anyio.CancelScope()  # shutdown cancels every open stream through this
        state.streams.add(stop)
        state.metrics.sse_connections.inc()
        try:
            with stop:
                async with core.bus.subscribe(last_event_id=last_event_id) as subscription:
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    started = True
                    await _body(send, f"retry: {RETRY_MS}\n\n".encode())
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
                        await self._pump(subscription, send, heartbeat)
                        tg.cancel_scope.cancel()
            if started:
                with anyio.move_on_after(SEND_TIMEOUT):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            state.streams.discard(stop)
            state.metrics.sse_connections.dec()

    async def _pump(self, subscription: Any, send: Send, heartbeat: float) -> None:
        iterator = subscription.__aiter__()
        while True:
            item: Event | Gap | None = None
            with anyio.move_on_after(heartbeat):
                item = await iterator.__anext__()
            body = b":-hb\n\n" if item is None else _frame(item, self._frames)
            with anyio.move_on_after(SEND_TIMEOUT) as scope:
                await _body(send, body)
            if scope.cancelled_caught:
                return  # a stalled client; it resumes with Last-Event-ID


async def _body(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


class _BadRequest(StorykitError):
    status = 400
    title = "Bad request"
