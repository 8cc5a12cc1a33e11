"""``Connection: close`` on an answer sent before the request's body has arrived.

A refusal (401, 403, 413, 429, …) is answered before the body is read. The unread rest
of the body then stands between this request and the next on the connection, so
Hypercorn closes it (or, on its trio worker, waits for a body nobody reads), and a
client that reuses the connection fails its next request with "server disconnected".
Saying ``Connection: close`` lets the client open a new connection instead. Reading and
discarding the body would be the alternative, but not for one too large to accept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["CloseOnUnreadBody"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class CloseOnUnreadBody:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # HTTP/2 and 3 frame each request's body on its own stream, and forbid the header.
        if (
            scope["type"] != "http"
            or scope.get("http_version") not in ("1.0", "1.1")
            or not _has_body(scope)
        ):
            await self.app(scope, receive, send)
            return
        received = False

        async def tracking_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                received = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not received:
                kept = [h for h in message.get("headers", ()) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*kept, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, tracking_receive, closing_send)
