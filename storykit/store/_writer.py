"""The queue of pending writes and the one task that group-commits them.

Every :meth:`~storykit.store.Store.write` is queued here; one writer task takes
everything queued (up to ``max_batch``), hands it to ``commit`` as one batch, and
wakes its callers with their events or errors: one wake-up per batch (an event all of
them wait on), not one per write. Under load many writes share one transaction,
which is what makes appending events cheap.

Both stores run this one loop; the PostgreSQL store adds an ``idle`` hook (its
writer gives its connection back to the pool when writes stop).
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable, Sequence

import anyio
import anyio.lowlevel

from storykit.models import Event
from storykit.store._batch import PendingWrite

__all__ = ["GroupWriter"]

Commit = Callable[[Sequence[PendingWrite]], Awaitable[bool]]
"""Runs a batch in one transaction, sets each write's ``event`` or ``error``, never
raises, and returns whether a transaction was committed."""
Idle = Callable[[], Awaitable[None]]
"""Called (shielded, never raising) each time the queue runs dry."""


class GroupWriter:
    """Callers :meth:`submit`; :meth:`run` (one task) commits what they queued."""

    def __init__(self, commit: Commit, *, max_batch: int, idle: Idle | None = None) -> None:
        self._commit = commit
        self._idle = idle
        self.max_batch = max_batch
        self._queue: collections.deque[PendingWrite] = collections.deque()
        self._wakeup: anyio.Event | None = None
        self._next: anyio.Event | None = None
        """What the callers of the writes not yet taken wait on: the next batch takes it
        (and leaves a fresh one for later writes) and sets it once committed."""
        self.closing = False
        self.transactions = 0
        self.writes = 0
        self.in_flight = 0
        """Writes in the batch being committed now."""

    @property
    def queued(self) -> int:
        """Writes waiting for the next batch (withdrawn ones included, until skipped)."""
        return len(self._queue)

    async def submit(self, pending: PendingWrite) -> Event:
        """Queue a write and wait for its outcome.

        If the caller is cancelled before the writer took its write, the write is
        withdrawn; after that it commits (or fails) without the caller.
        """
        self._queue.append(pending)
        if self._wakeup is not None:
            self._wakeup.set()
        try:
            while not pending.settled:  # more than max_batch queued: the next batch
                if self._next is None:
                    self._next = anyio.Event()
                await self._next.wait()
        except BaseException:
            if not pending.taken:
                pending.cancelled = True
            raise
        if pending.error is not None:
            raise pending.error
        assert pending.event is not None
        return pending.event

    def close(self) -> None:
        """Let :meth:`run` return once the queue is drained."""
        self.closing = True
        if self._wakeup is not None:
            self._wakeup.set()

    async def run(self) -> None:
        try:
            while True:
                if not self._queue and self._idle is not None:
                    # One turn for the callers just woken to queue their next writes:
                    # under load the queue is empty only for that moment.
                    await anyio.lowlevel.checkpoint()
                    if not self._queue:
                        with anyio.CancelScope(shield=True):
                            await self._idle()
                while not self._queue:
                    if self.closing:
                        return
                    self._wakeup = anyio.Event()
                    await self._wakeup.wait()
                taken, self._next = self._next, None
                batch = self._take_batch()
                if not batch:
                    if taken is not None:
                        taken.set()
                    continue
                # Shielded: a batch is short, and abandoning it halfway would leave the
                # connection inside a transaction and its callers waiting forever.
                self.in_flight = len(batch)
                with anyio.CancelScope(shield=True):
                    if await self._commit(batch):
                        self.transactions += 1
                        self.writes += sum(1 for w in batch if w.event is not None)
                self.in_flight = 0
                for w in batch:
                    w.settled = True
                if taken is not None:
                    taken.set()  # one wake-up for the whole batch, in the order they waited
        finally:
            # Cancelled while idle (the host shut down under us): nobody will run
            # what is still queued, so tell its callers instead of leaving them hanging.
            while self._queue:
                w = self._queue.popleft()
                w.error = RuntimeError("the store closed before this write ran")
                w.settled = True
            if self._next is not None:
                self._next.set()

    def _take_batch(self) -> list[PendingWrite]:
        batch: list[PendingWrite] = []
        while self._queue and len(batch) < self.max_batch:
            w = self._queue.popleft()
            if not w.cancelled:
                w.taken = True
                batch.append(w)
        return batch
