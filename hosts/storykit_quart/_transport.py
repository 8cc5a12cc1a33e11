"""Reset the TCP connection under a response: what an SSE send timeout needs and ASGI lacks.

ASGI has no way to abort a connection, and Hypercorn's own close waits for unsent data to
drain (asyncio: ``wait_closed`` after a graceful close; trio: a shielded ``send_all``),
which never happens with a client that stopped reading: the socket and the megabytes
queued for it would stay for as long as the peer keeps the connection open.

:func:`closer_for` finds the socket behind Hypercorn's ``send`` callable (its HTTP stream's
``app_send`` → the protocol's ``send`` → the connection's ``TCPServer``, which holds the
asyncio ``StreamWriter`` or the trio ``SocketStream``) and returns a function that resets
it: ``SO_LINGER`` 0, then close, so the kernel drops the unsent data and answers with RST
instead of probing a zero window for ever. Under another server, or a Hypercorn whose
internals moved, it returns None and the caller can only end the response; the tests on a
real Hypercorn (asyncio and trio workers) notice such a move.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import Any

__all__ = ["Closer", "closer_for"]

Closer = Callable[[], None]

_HOPS = 4  # app_send → protocol → TCPServer, with room for one more hop
_LINGER_ZERO = struct.pack("ii", 1, 0)


def closer_for(send: object) -> Closer | None:
    """A function that resets the connection ``send`` writes to, or None if not found."""
    node: Any = send
    for _ in range(_HOPS):
        node = getattr(node, "__wrapped__", node)  # a middleware's send (the pipeline's)
        owner = getattr(node, "__self__", None)
        if owner is None:
            return None
        writer = getattr(owner, "writer", None)
        if isinstance(writer, asyncio.StreamWriter):
            transport = writer.transport
            return lambda: _reset_transport(transport)
        stream = getattr(owner, "stream", None)
        if hasattr(stream, "send_all"):  # a trio stream (the protocol's ``stream`` is not)
            sock = getattr(getattr(stream, "transport_stream", stream), "socket", None)
            if sock is not None:
                return lambda: _reset_socket(sock)
        node = getattr(owner, "send", None)
    return None


def _linger_zero(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)


def _reset_transport(transport: asyncio.WriteTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        _linger_zero(sock)
    transport.abort()  # drops asyncio's buffer; connection_lost tells Hypercorn


def _reset_socket(sock: Any) -> None:
    _linger_zero(sock)
    sock.close()  # trio wakes the task blocked in send_all with ClosedResourceError
