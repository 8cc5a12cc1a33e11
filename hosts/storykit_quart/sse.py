"""``GET /events``: the live event stream, as a small raw-ASGI handler in front of Quart.

Why not a Quart route: a stream needs a timeout on every send (so a stalled client
is dropped instead of holding its queue) and a prompt end when the client goes away
or the server shuts down. Owning the ``send``/``receive`` loop makes both direct,
and keeps an idle subscriber down to its queue, one task and a few frames.

Wire format: ``retry:`` and ``event: ready`` with ``{"head","epoch"}`` at open (every
event after ``head`` follows); ``event: reset`` with the same fields when the client
resumed from an id this log does not have; each event as ``id: N`` +
``data: {"id","type","at","data"}`` (no ``event:`` field, so a browser's ``onmessage``
sees them all); when the subscriber's queue overflowed, ``event: gap`` with
``{"first_id","last_id","count"}`` so the client can fetch them from ``/events/log``;
``:-hb`` comments while idle.

A send that has not finished after ``SSE_SEND_TIMEOUT`` seconds (the client stopped
reading) resets the connection itself (:mod:`storykit_quart._transport`), is counted in
``storykit_sse_streams_dropped_total{reason="slow"}`` and logged once. A client that
goes away ends the stream at the first send after it left, not a backlog later.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.lowlevel

from storykit.auth import Principal
from storykit.errors import StorykitError, Unauthorized
from storykit.events import Gap, Subscription
from storykit.models import Event, to_dict
from storykit_quart._transport import Closer, closer_for
from storykit_quart.cors import allowed_origin
from storykit_quart.state import HostState

__all__ = ["SSEMiddleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

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


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class _Asked:
    principal: Principal
    last_event_id: int | None
    epoch: str | None


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

    async def _authenticate(self, scope: Scope) -> _Asked:
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
        epoch = (query.get("epoch") or [None])[0] or None
        return _Asked(principal=principal, last_event_id=last, epoch=epoch)

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
            asked = await self._authenticate(scope)
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
        stop = anyio.CancelScope()  # shutdown cancels every open stream through this
        state.streams.add(stop)
        state.metrics.sse_connections.inc()
        try:
            async with (
                core.bus.subscribe(
                    last_event_id=asked.last_event_id, epoch=asked.epoch
                ) as subscription,
                anyio.create_task_group() as tg,
            ):
                out = _Out(send, tg.cancel_scope, state.settings.sse_send_timeout)
                tg.start_soon(self._watch, receive, out, scope, asked)
                with stop:
                    await out.send(
                        {"type": "http.response.start", "status": 200, "headers": headers}
                    )
                    position = json.dumps({"head": subscription.head, "epoch": subscription.epoch})
                    opening = f"retry: {RETRY_MS}\nevent: ready\ndata: {position}\n\n"
                    if subscription.reset:
                        opening += f"event: reset\ndata: {position}\n\n"
                    await out.body(opening.encode())
                    await self._pump(subscription, out)
                await out.body(b"", more=False)  # the server ends it: shutdown
                tg.cancel_scope.cancel()
        finally:
            state.streams.discard(stop)
            state.metrics.sse_connections.dec()

    async def _pump(self, subscription: Subscription, out: _Out) -> None:
        heartbeat = self.state.settings.sse_heartbeat_interval
        iterator = subscription.__aiter__()
        while True:
            item: Event | Gap | None = None
            with anyio.move_on_after(heartbeat):
                try:
                    item = await iterator.__anext__()
                except StopAsyncIteration:  # the bus closed: the server is stopping
                    return
            if item is None:
                await out.body(b":-hb\n\n")
                continue
            await out.body(_frame(item, self._frames))
            if isinstance(item, Event):
                out.last_id = item.id
            if subscription.pending:
                # A send into a connection that is gone returns as if it worked; the
                # disconnect arrives through receive. Let the watcher see it before the
                # next of a run of sends (a backlog, a burst), not a backlog later.
                await anyio.lowlevel.checkpoint()

    async def _watch(self, receive: Receive, out: _Out, scope: Scope, asked: _Asked) -> None:
        """End the stream when the client disconnects, or reset it when a send stalls."""
        timeout = out.timeout
        while True:
            since = out.since
            now = anyio.current_time()
            if since is not None and now - since >= timeout:
                self._drop_slow(out, scope, asked)
                return
            with anyio.move_on_after(timeout if since is None else since + timeout - now):
                if (await receive())["type"] == "http.disconnect":
                    out.scope.cancel()
                    return

    def _drop_slow(self, out: _Out, scope: Scope, asked: _Asked) -> None:
        closed = out.closer is not None
        if out.closer is not None:
            out.closer()
        out.scope.cancel()
        self.state.metrics.sse_streams_dropped.labels(reason="slow").inc()
        client = scope.get("client")
        self.state.log.warning(
            "sse stream dropped",
            reason="slow",
            send_timeout=out.timeout,
            connection_reset=closed,
            agent=asked.principal.name,
            client=f"{client[0]}:{client[1]}" if client else None,
            last_event_id=out.last_id,
        )


class _Out:
    """The sending side of one stream: every send is timed for the watcher."""

    __slots__ = ("_send", "closer", "last_id", "scope", "since", "timeout")

    def __init__(self, send: Send, scope: anyio.CancelScope, timeout: float) -> None:
        self._send = send
        self.scope = scope  # cancelling it ends the stream
        self.timeout = timeout
        self.closer: Closer | None = closer_for(send)
        self.since: float | None = None  # when the send in flight began
        self.last_id: int | None = None  # the newest event id sent

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.since = anyio.current_time()
        try:
            await self._send(message)
        except OSError:  # a server that raises when the client is gone
            self.scope.cancel()
            await anyio.lowlevel.checkpoint()
        finally:
            self.since = None

    async def body(self, body: bytes, *, more: bool = True) -> None:
        await self.send({"type": "http.response.body", "body": body, "more_body": more})


class _BadRequest(StorykitError):
    status = 400
    title = "Bad request"
