"""The peer bench_sse.py measures storykit against: a minimal sse-starlette app on uvicorn.

    python bench/_sse_peer.py --port 8765

It does what storykit's ``GET /events`` does for a live subscriber, with the least code
the libraries allow, so the comparison shows what storykit's host and bus cost:

- an in-memory broadcast to one bounded queue per subscriber (``QUEUE_MAX``, oldest
  dropped on overflow, as storykit's ``SSE_QUEUE_MAX``);
- each event framed per subscriber as ``id: N`` + ``data: {"id","type","data","at"}`` with
  the JSON encoded in the subscriber's own task, as storykit's pump does;
- a ping every 15 s and a 10 s send timeout, as storykit's defaults.

``POST /publish`` with ``{"type", "data"}`` stamps ``at`` and broadcasts at once: there is
no database behind it, so storykit's figures also include writing each event to SQLite.
``GET /stats`` says how many subscribers are registered. No auth, no logs: uvicorn with
one worker, the asyncio loop and h11 (neither uvloop nor httptools is installed), access
log off, bound to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import uvicorn
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

QUEUE_MAX = 1000
PING_SECONDS = 15
SEND_TIMEOUT = 10.0

_subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
_ids = itertools.count(1)


def _offer(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    """Queue without blocking the publisher: a full queue loses its oldest event."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(event)


async def publish(request: Request) -> Response:
    body = await request.json()
    event = {
        "id": next(_ids),
        "type": str(body["type"]),
        "data": body.get("data", {}),
        "at": datetime.now(UTC).isoformat(),
    }
    for queue in _subscribers:
        _offer(queue, event)
    return JSONResponse({"id": event["id"], "subscribers": len(_subscribers)})


async def events(request: Request) -> Response:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_MAX)
    _subscribers.add(queue)

    async def stream() -> AsyncIterator[dict[str, Any]]:
        try:
            while True:
                event = await queue.get()
                data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
                yield {"id": str(event["id"]), "data": data}
        finally:
            _subscribers.discard(queue)

    return EventSourceResponse(stream(), ping=PING_SECONDS, send_timeout=SEND_TIMEOUT)


async def stats(request: Request) -> Response:
    return JSONResponse({"subscribers": len(_subscribers)})


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/events", events),
        Route("/publish", publish, methods=["POST"]),
        Route("/stats", stats),
        Route("/health", health),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        loop="asyncio",
        http="h11",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
