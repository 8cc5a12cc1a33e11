"""Running ``storykit_on_event`` observers: each event to each observer once, by one process.

SPEC §5: however many processes or replicas share the event log, each observer
sees each event exactly once. So an observer's progress is not this process's
memory but a cursor row in the database (``observer_cursors``: the last event id
it has seen), and a batch of its events is run by whoever holds that row
(:meth:`~storykit.store.Store.claim_events`):

- PostgreSQL: the row is locked ``FOR UPDATE SKIP LOCKED`` in a transaction that
  runs the batch and advances the cursor before ``COMMIT``; another replica skips a
  locked row and tries again later.
- SQLite: a lease on the row (an owner id and an expiry by SQLite's clock), taken in
  a ``BEGIN IMMEDIATE`` transaction and renewed at each claim; a store gives up its
  leases when it closes.

Only processes that ask run observers: the web host does (``Storykit.open(…,
run_observers=True)``); a CLI command or the MCP stdio server does not, so a command
next to the server never fires the server's observers again. Events such a process
writes are still observed: the server finds them after its cursor within
:data:`POLL` seconds. A cursor is made at the newest event the first time an
observer runs, so a new observer sees what comes after, not the whole history.

**When a process dies mid-batch** (or is stopped mid-hook) the cursor has not moved:
the next process to claim the observer runs the batch again (on PostgreSQL once the
dead connection's transaction ends; on SQLite once the lease expires, after
:data:`LEASE` seconds). So delivery is exactly once while processes live, and at
least once across a crash: an observer with side effects outside storykit should
treat ``event.id`` as an idempotency key. An observer hook that runs longer than the
lease on SQLite may also have its batch run again by another process.
"""

from __future__ import annotations

import logging

import anyio

from storykit.errors import StorykitError
from storykit.plugins import Registry
from storykit.store import Store

__all__ = ["BATCH", "LEASE", "POLL", "ObserverRunner"]

POLL = 1.0
"""Seconds between looks for events other processes wrote (and lease renewals)."""
LEASE = 30.0
"""Seconds an SQLite lease lasts after each claim."""
BATCH = 100

log = logging.getLogger("storykit.observers")


class ObserverRunner:
    """One task (:meth:`run`) that feeds each observer its events, coordinated by the store."""

    def __init__(
        self, store: Store, registry: Registry, *, poll: float = POLL, batch: int = BATCH
    ) -> None:
        self.store = store
        self.registry = registry
        self.poll = poll
        self.batch = batch
        self.names = registry.observers()
        self._wakeup = anyio.Event()

    async def prepare(self) -> None:
        """Make the cursors of new observers, at the newest event (before :meth:`run`,
        so every event written after this is observed)."""
        if self.names:
            await self.store.ensure_cursors(self.names)

    def wake(self) -> None:
        """Something was written: look now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        if not self.names:
            return
        while True:
            self._wakeup = anyio.Event()  # before looking: a write meanwhile wakes the wait
            for name in self.names:
                try:
                    await self._drain(name)
                except StorykitError as exc:  # the database is down, say: try again later
                    log.warning("observer %s: %s", name, exc)
            with anyio.move_on_after(self.poll):
                await self._wakeup.wait()

    async def _drain(self, name: str) -> None:
        while True:
            async with self.store.claim_events(name, limit=self.batch, lease=LEASE) as events:
                if not events:
                    return  # nothing new, or another process runs this observer
                for event in events:
                    await self.registry.notify(event, only=name)
            if len(events) < self.batch:
                return
