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

Who may open a stream (a key, ``?key=`` or a ``?ticket=``) is settled by the request
pipeline (:mod:`storykit_quart.pipeline`) before this handler runs; it logs and counts the
stream when it ends.

One ticker task per app (:meth:`SSEMiddleware.running`) does every stream's heartbeat and
send timeout: a stream waits for its next event with no timeout of its own, and the
ticker interrupts the ones that have been idle for ``SSE_HEARTBEAT_INTERVAL``. With a
thousand streams, two cancel scopes and their timers per delivery were a third of the
server's CPU. A disconnect watcher per stream runs in the same app-wide task group.

A send that has not finished after ``SSE_SEND_TIMEOUT`` seconds (the client stopped
reading) resets the connection itself (:mod:`storykit_quart._transport`), is counted in
``storykit_sse_streams_dropped_total{reason="slow"}`` and logged once. A client that
goes away ends the stream at the first send after it left, not a backlog later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.abc
import anyio.lowlevel
import sniffio

from storykit.errors import StorykitError, Unauthorized
from storykit.events import Gap, Interrupted, Subscription
from storykit.models import Event, to_dict
from storykit_quart._transport import Closer, closer_for
from storykit_quart.cors import allowed_origin
from storykit_quart.pipeline import CALL, Call, problem_body
from storykit_quart.state import HostState

__all__ = ["SSEMiddleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_MS = 2000
PATH = "/events"
HEARTBEAT = b":-hb\n\n"
_FRAME_CACHE = 256


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


def tick_period(heartbeat: float, send_timeout: float) -> float:
    """How often the ticker looks at every stream: a tenth of the shorter of the two
    intervals (so either is kept to within 10 %), at most every 10 ms, at least every 0.5 s."""
    return min(0.5, max(0.01, min(heartbeat, send_timeout) / 10))


class SSEMiddleware:
    """Serves ``GET /events`` itself and passes everything else to the Quart app.

    :meth:`running` must be entered for the app's serving lifespan: it runs the ticker
    and the streams' disconnect watchers.
    """

    def __init__(self, app: ASGIApp, state: HostState) -> None:
        self.app = app
        self.state = state
        self._frames: dict[int, bytes] = {}  # per app: ids repeat across databases
        self._streams: set[_Stream] = set()
        self._tasks: anyio.abc.TaskGroup | None = None
        # On asyncio the watchers are plain tasks: an anyio task costs its handle, a
        # cancel scope and events, a few KiB per idle stream (memory is a goal here).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchers: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        if sniffio.current_async_library() == "asyncio":
            self._loop = asyncio.get_running_loop()
        async with anyio.create_task_group() as tg:
            self._tasks = tg
            tg.start_soon(self._tick)
            try:
                yield
            finally:
                self._tasks = None
                for task in list(self._watchers):
                    task.cancel()
                tg.cancel_scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)  # Quart answers 405 as problem+json
            return
        await self.stream(scope, receive, send)

    async def _refuse(self, send: Send, exc: StorykitError, call: Call | None) -> None:
        body = problem_body(exc, call.request_id if call is not None else None)
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
        call: Call | None = scope.get(CALL)
        try:
            if call is None or call.principal is None:  # never behind the pipeline
                raise Unauthorized("missing API key: send it in the X-API-Key header")
            last_event_id, epoch = _position(scope)
        except StorykitError as exc:
            await self._refuse(send, exc, call)
            return
        core = state.require_core()
        tasks = self._tasks
        if tasks is None:
            raise RuntimeError("SSEMiddleware.running() is not entered")
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
        client = scope.get("client")
        out = _Stream(
            send,
            state.settings.sse_send_timeout,
            agent=call.principal.name,
            client=f"{client[0]}:{client[1]}" if client else None,
        )
        state.streams.add(out.scope)  # shutdown cancels every open stream through this
        state.metrics.sse_connections.inc()
        try:
            async with core.bus.subscribe(last_event_id=last_event_id, epoch=epoch) as sub:
                out.subscription = sub
                with out.scope:
                    self._streams.add(out)
                    self._start_watching(tasks, receive, out)
                    await out.send(
                        {"type": "http.response.start", "status": 200, "headers": headers}
                    )
                    position = json.dumps({"head": sub.head, "epoch": sub.epoch})
                    opening = f"retry: {RETRY_MS}\nevent: ready\ndata: {position}\n\n"
                    if sub.reset:
                        opening += f"event: reset\ndata: {position}\n\n"
                    await out.body(opening.encode())
                    await self._pump(sub, out)
                if not out.gone:  # the server ends it (shutdown): say so, within the timeout
                    self._streams.discard(out)
                    with anyio.move_on_after(out.timeout):
                        await out.body(b"", more=False)
        finally:
            self._streams.discard(out)
            out.stop_watching()
            state.streams.discard(out.scope)
            state.metrics.sse_connections.dec()

    async def _pump(self, subscription: Subscription, out: _Stream) -> None:
        frames = self._frames
        while True:
            try:
                item = await subscription.__anext__()
            except StopAsyncIteration:  # the bus closed: the server is stopping
                return
            except Interrupted:  # the ticker: idle for a heartbeat interval
                await out.body(HEARTBEAT)
                continue
            await out.body(_frame(item, frames))
            if isinstance(item, Event):
                out.last_id = item.id
            if subscription.pending:
                # A send into a connection that is gone returns as if it worked; the
                # disconnect arrives through receive. Let the watcher see it before the
                # next of a run of sends (a backlog, a burst), not a backlog later.
                await anyio.lowlevel.checkpoint()

    def _start_watching(self, tasks: anyio.abc.TaskGroup, receive: Receive, out: _Stream) -> None:
        if self._loop is not None:
            task = self._loop.create_task(self._watch(receive, out))
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)
            out.stop_watching = task.cancel
        else:
            scope = anyio.CancelScope()
            out.stop_watching = scope.cancel
            tasks.start_soon(self._watch_in, scope, receive, out)

    async def _watch_in(self, scope: anyio.CancelScope, receive: Receive, out: _Stream) -> None:
        with scope:
            await self._watch(receive, out)

    @staticmethod
    async def _watch(receive: Receive, out: _Stream) -> None:
        """End the stream when the client disconnects."""
        with contextlib.suppress(Exception):  # a closed channel: the client is gone too
            while (await receive())["type"] != "http.disconnect":
                pass
        out.gone = True
        out.scope.cancel()

    async def _tick(self) -> None:
        """Every stream's heartbeat and send timeout, for the whole app."""
        settings = self.state.settings
        heartbeat = settings.sse_heartbeat_interval
        period = tick_period(heartbeat, settings.sse_send_timeout)
        while True:
            await anyio.sleep(period)
            now = time.monotonic()
            for out in list(self._streams):
                since = out.since
                if since is not None:
                    if now - since >= out.timeout:
                        self._drop_slow(out)
                elif now - out.last >= heartbeat and out.subscription is not None:
                    out.subscription.interrupt()

    def _drop_slow(self, out: _Stream) -> None:
        self._streams.discard(out)
        closed = out.closer is not None
        if out.closer is not None:
            out.closer()
        out.gone = True
        out.scope.cancel()
        self.state.metrics.sse_streams_dropped.labels(reason="slow").inc()
        self.state.log.warning(
            "sse stream dropped",
            reason="slow",
            send_timeout=out.timeout,
            connection_reset=closed,
            agent=out.agent,
            client=out.client,
            last_event_id=out.last_id,
        )


def _position(scope: Scope) -> tuple[int | None, str | None]:
    """Where the client resumes: ``Last-Event-ID`` (or ``?last_event_id=``) and ``?epoch=``."""
    raw_last = next(
        (v.decode("latin-1") for k, v in scope["headers"] if k == b"last-event-id"), None
    )
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if not raw_last:
        raw_last = (query.get("last_event_id") or [None])[0]
    last: int | None = None
    if raw_last not in (None, ""):
        try:
            last = int(str(raw_last))
        except ValueError:
            last = -1
        if last < 0:
            raise _BadRequest("Last-Event-ID must be a whole number of 0 or more")
    return last, (query.get("epoch") or [None])[0] or None


class _Stream:
    """One open stream: its sending side (every send timed for the ticker) and the scope
    that ends it."""

    __slots__ = (
        "_send",
        "agent",
        "client",
        "closer",
        "gone",
        "last",
        "last_id",
        "scope",
        "since",
        "stop_watching",
        "subscription",
        "timeout",
    )

    def __init__(self, send: Send, timeout: float, *, agent: str, client: str | None) -> None:
        self._send = send
        self.scope = anyio.CancelScope()  # cancelling it ends the stream
        self.stop_watching: Callable[[], object] = lambda: None  # ends the disconnect watcher
        self.timeout = timeout
        self.closer: Closer | None = closer_for(send)
        self.since: float | None = None  # when the send in flight began
        self.last = time.monotonic()  # when the last send began
        self.last_id: int | None = None  # the newest event id sent
        self.gone = False  # the client left or was dropped: write nothing more
        self.subscription: Subscription | None = None
        self.agent = agent
        self.client = client

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.since = self.last = time.monotonic()
        try:
            await self._send(message)
        except OSError:  # a server that raises when the client is gone
            self.gone = True
            self.scope.cancel()
            await anyio.lowlevel.checkpoint()
        finally:
            self.since = None

    async def body(self, body: bytes, *, more: bool = True) -> None:
        await self.send({"type": "http.response.body", "body": body, "more_body": more})


class _BadRequest(StorykitError):
    status = 400
    title = "Bad request"
