"""CPU-bound work off the event loop: one big diff must not stall every other request.

Parsing a 5 MB diff takes about a second of pure Python; on the event loop that
second is everybody's (a ``/health`` probe waits it out). :func:`off_loop` runs
such work in a worker thread once its input is big enough to matter.

The threads share one :class:`~anyio.CapacityLimiter` per event loop, of
:data:`CPU_THREADS`: under the GIL more threads would not finish the work sooner,
only hold more big diffs in memory at once, and the default thread pool stays
free for the I/O that other requests wait on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

__all__ = ["CPU_THREADS", "OFFLOAD_CHARS", "cpu_limiter", "off_loop"]

T = TypeVar("T")

OFFLOAD_CHARS = 64 * 1024
"""Inputs up to this many characters are handled inline: the work takes well under a
millisecond there, less than the hop to a thread."""

CPU_THREADS = 2

_limiter: RunVar[anyio.CapacityLimiter] = RunVar("storykit_cpu_limiter")


def cpu_limiter() -> anyio.CapacityLimiter:
    """The limiter of this event loop's CPU-bound threads (one per loop, as anyio's own)."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(CPU_THREADS)
        _limiter.set(limiter)
        return limiter


async def off_loop(size: int, fn: Callable[[], T]) -> T:
    """``fn()`` inline when ``size`` (characters of input) is small, else in a worker thread."""
    if size <= OFFLOAD_CHARS:
        return fn()
    return await anyio.to_thread.run_sync(fn, limiter=cpu_limiter())
