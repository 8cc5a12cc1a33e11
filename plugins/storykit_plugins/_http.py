"""httpx's exceptions translated into storykit's, once, at the edge of each backend.

Like httpcore's ``map_exceptions``: the code that sends a request runs inside
:func:`map_httpx_errors`, which turns a timeout or a failure to talk to the server
into a :class:`~storykit.errors.BackendError` whose message says which server and
what to check. The httpx exception is not chained to it: its request holds the
headers, and those hold the token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import httpx

from storykit.errors import BackendError

__all__ = ["map_httpx_errors"]


@contextlib.contextmanager
def map_httpx_errors(*, timeout: str, unreachable: Callable[[str], str]) -> Iterator[None]:
    """Raise :class:`BackendError` for any httpx exception raised inside the block.

    ``timeout`` is the message when the server did not answer in time (any
    ``httpx.TimeoutException``: connect, read, write or pool). ``unreachable(error)``
    makes the message for every other ``httpx.HTTPError`` (refused, reset, a protocol
    error, ``raise_for_status()``), given ``error`` as ``"ConnectError: <what httpx said>"``.
    Other exceptions pass through untouched.
    """
    try:
        yield
    except httpx.TimeoutException:
        raise BackendError(timeout) from None
    except httpx.HTTPError as exc:
        raise BackendError(unreachable(f"{type(exc).__name__}: {exc}")) from None
