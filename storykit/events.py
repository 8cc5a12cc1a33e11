"""The in-process event bus: live events for SSE streams and observers.

The event log in the store is the truth; the bus delivers it, in id order,
exactly once, to every subscriber and listener.

- Services call :meth:`EventBus.publish` with the event a write returned. Those
  calls can arrive out of order (two tasks resumed by one group commit) or not at
  all (a task cancelled after its write committed), so the bus keeps events that
  run ahead of the next expected id aside and asks its pump to read the hole from
  the log. Ids are assigned under SQLite's write lock, so they commit in id order
  and a log read after ``n`` is complete up to the newest id it returns.
- The pump (run by ``async with bus:``, or ``tg.start_soon(bus.run)`` plus
  :meth:`EventBus.close` at the end if you own the task group) also polls
  :meth:`Store.last_event_id` every ``poll_interval`` seconds and reads what
  other processes sharing the database wrote (the CLI next to the server), and
  reads at once when :meth:`EventBus.nudge` is called (a store told that another
  replica committed).
  Whichever of publish and pump delivers an event first wins; the other is a
  duplicate and is dropped.
- A subscription starts at a known point: :attr:`Subscription.head`, the log's
  newest id when it started. Everything after it is delivered, so a client that read
  a snapshot (a list) at head ``h`` and subscribes from ``h`` misses nothing. Resuming
  from an id this log does not have (ahead of its end, or from another
  :attr:`Subscription.epoch`) starts at the head instead and sets
  :attr:`Subscription.reset`: the client's view belongs to another log and must be
  reloaded.
- Each subscriber has a bounded queue. On overflow the oldest event is dropped,
  counted (:attr:`EventBus.dropped`, :attr:`EventBus.on_drop`) and reported to the
  subscriber in-band as a :class:`Gap` before its next event, so it can read the
  missed ids from the log.

Everything here runs on the event loop's thread; :meth:`EventBus.publish` must not
be called from another thread.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

import anyio
from anyio.abc import TaskGroup

from storykit.models import Event

__all__ = ["EventBus", "Gap", "Interrupted", "Item", "Subscription"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Gap:
    """Events a subscriber missed because its queue overflowed: ids ``first_id..last_id``.

    They are still in the log (``GET /events/log?after=first_id-1``).
    """

    first_id: int
    last_id: int
    count: int


Item = Event | Gap


class Interrupted(Exception):  # not an error: a wake-up call
    """What a waiting :meth:`Subscription.__anext__` raises after ``interrupt()``."""


class EventLog(Protocol):
    """The part of :class:`~storykit.store.Store` the bus reads."""

    async def read_events(self, *, after: int = 0, limit: int = 100) -> list[Event]: ...

    async def last_event_id(self) -> int: ...

    async def epoch(self) -> str: ...


Listener = Callable[[Event], object]


class EventBus:
    """Fan events out to subscribers and listeners; see the module docstring.

    ``poll_interval`` is how often (seconds) to look for events other processes
    wrote; ``None`` disables polling (the pump then only fills holes).
    ``on_drop(n)`` is called with the number of events dropped from full queues.
    """

    def __init__(
        self,
        store: EventLog,
        *,
        queue_max: int = 1000,
        poll_interval: float | None = 1.0,
        page_size: int = 500,
        on_drop: Callable[[int], object] | None = None,
    ) -> None:
        if queue_max < 1:
            raise ValueError("queue_max must be at least 1")
        self.store = store
        self.queue_max = queue_max
        self.poll_interval = poll_interval
        self.page_size = page_size
        self.on_drop = on_drop
        self.published = 0  # events delivered
        self.dropped = 0  # events dropped from full subscriber queues
        self.listener_errors = 0
        self._last_id: int | None = None  # the newest id delivered; None until started
        self._ahead: dict[int, Event] = {}  # published early, waiting for a hole to fill
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Listener] = []
        self._nudge = anyio.Event()
        self._catching_up = anyio.Lock()
        self._task_group: TaskGroup | None = None

    # -- lifecycle ---------------------------------------------------------------
    async def __aenter__(self) -> EventBus:
        await self.start()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task_group, self._task_group = self._task_group, None
        if task_group is not None:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)
        self.close()

    async def start(self) -> None:
        """Take the log's current end as the point live delivery starts from."""
        if self._last_id is None:
            last = await self.store.last_event_id()
            if self._last_id is None:  # a publish may have set it meanwhile
                self._last_id = last

    async def run(self) -> None:
        """The pump: fill holes at once, poll for other processes' events. Runs until cancelled."""
        await self.start()
        while True:
            with anyio.move_on_after(
                math.inf if self.poll_interval is None else self.poll_interval
            ):
                await self._nudge.wait()
            self._nudge = anyio.Event()
            try:
                if self._ahead or await self.store.last_event_id() > (self._last_id or 0):
                    await self.catch_up()
            except Exception:  # the store may be briefly unavailable; try again later
                log.exception("event bus: reading the event log failed")

    def nudge(self) -> None:
        """Read the log now, without waiting for the poll.

        For a store that learns another process committed (PostgreSQL's NOTIFY, see
        :meth:`storykit.store.postgres.PostgresStore.watch`). Call it on the event
        loop's thread; many nudges before the pump runs cost one read.
        """
        self._nudge.set()

    def close(self) -> None:
        """End every subscription (each still yields what it has queued)."""
        for subscription in list(self._subscriptions):
            subscription._end()

    # -- publishing --------------------------------------------------------------
    def publish(self, event: Event) -> None:
        """Deliver a committed event. Synchronous, never blocks; duplicates are ignored."""
        if self._last_id is None:
            self._last_id = event.id - 1
        if event.id <= self._last_id or event.id in self._ahead:
            return
        if event.id != self._last_id + 1:
            self._ahead[event.id] = event
            self._nudge.set()  # the pump reads the hole from the log
            return
        self._deliver(event)
        self._deliver_ahead()

    async def catch_up(self) -> None:
        """Deliver everything in the log after the newest event delivered."""
        await self.start()
        async with self._catching_up:
            while True:
                assert self._last_id is not None
                page = await self.store.read_events(after=self._last_id, limit=self.page_size)
                for event in page:
                    # The page is complete from where it started, so an id above the
                    # newest delivered is the next event even if it is not last+1.
                    if event.id > self._last_id:
                        self._ahead.pop(event.id, None)
                        self._deliver(event)
                self._deliver_ahead()
                if len(page) < self.page_size:
                    return

    def _deliver_ahead(self) -> None:
        if not self._ahead:
            return
        assert self._last_id is not None
        for stale in [i for i in self._ahead if i <= self._last_id]:
            del self._ahead[stale]
        while (event := self._ahead.pop(self._last_id + 1, None)) is not None:
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        self._last_id = event.id
        self.published += 1
        dropped = 0
        for subscription in self._subscriptions:
            dropped += subscription._push(event)
        if dropped:
            self.dropped += dropped
            if self.on_drop is not None:
                try:
                    self.on_drop(dropped)
                except Exception:
                    log.exception("event bus: on_drop callback failed")
        for listener in tuple(self._listeners):  # a listener may remove itself
            try:
                listener(event)
            except Exception:
                self.listener_errors += 1
                log.exception("event bus: listener %r failed on event %s", listener, event.id)

    # -- consumers ---------------------------------------------------------------
    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event, in id order; returns a remover.

        Listeners run inside :meth:`publish`: they must be quick and must not block
        (hand the event to a memory stream for anything slow or async). One that
        raises is logged and counted in :attr:`listener_errors`, nothing more.
        """
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def subscribe(
        self, *, last_event_id: int | None = None, epoch: str | None = None
    ) -> Subscription:
        """A stream of events after ``last_event_id`` (the log's backlog first), or
        after the log's head if it is None. ``epoch`` is the log ``last_event_id``
        came from, if known. Use it as ``async with bus.subscribe() as sub:`` and
        iterate ``sub``: it yields :class:`~storykit.models.Event` and :class:`Gap`
        items."""
        return Subscription(self, last_event_id, epoch)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)


class Subscription:
    """One subscriber's view of the bus: backlog from the log, then live events.

    The live queue is registered on entry, before the log's head is read and before
    the backlog is, so an event committed meanwhile is in the log read, in the queue,
    or both; both is resolved by skipping ids at or below the last one yielded.

    After entry, :attr:`head` is the log's newest id then (every later event will be
    yielded), :attr:`epoch` the log's epoch, and :attr:`reset` tells whether the
    requested ``last_event_id`` was not in this log (see the module docstring).
    """

    __slots__ = (
        "_backlog",
        "_bus",
        "_cursor",
        "_ended",
        "_entered",
        "_gap",
        "_interrupted",
        "_queue",
        "_replaying",
        "_wakeup",
        "_wanted_epoch",
        "epoch",
        "head",
        "reset",
    )

    def __init__(self, bus: EventBus, last_event_id: int | None, epoch: str | None) -> None:
        self._bus = bus
        self._cursor = last_event_id  # the newest id yielded (or to resume after)
        self._wanted_epoch = epoch
        self._replaying = False
        self.head = 0
        self.epoch = ""
        self.reset = False
        # Made only when replaying: an idle live subscriber should cost as little as can be.
        self._backlog: collections.deque[Event] | None = None
        self._queue: collections.deque[Event] = collections.deque()
        self._gap: Gap | None = None
        self._wakeup: anyio.Event | None = None
        self._entered = False
        self._ended = False  # no more live events will come
        self._interrupted = False

    async def __aenter__(self) -> Subscription:
        if self._entered:
            raise RuntimeError("a subscription can be entered only once")
        self._entered = True
        # Registered first: every event delivered from here on is queued, so none
        # committed after the head is read can be missed.
        self._bus._subscriptions.add(self)
        try:
            self.head = await self._bus.store.last_event_id()
            self.epoch = await self._bus.store.epoch()
        except BaseException:
            self._end()
            raise
        wanted = self._cursor
        if wanted is not None and (
            wanted > self.head or self._wanted_epoch not in (None, self.epoch)
        ):
            # An id from another log (the database was replaced or restored): taken
            # as it is, it would skip new events or replay unrelated ones.
            self.reset = True
            wanted = None
        self._cursor = self.head if wanted is None else wanted
        self._replaying = self._cursor < self.head
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Unsubscribe and free the queue now."""
        self._end()
        self._queue.clear()
        self._backlog = None
        self._replaying = False
        self._gap = None

    def _end(self) -> None:
        self._bus._subscriptions.discard(self)
        self._ended = True
        if self._wakeup is not None:
            self._wakeup.set()

    def _push(self, event: Event) -> int:
        """Queue a live event; return how many were dropped to make room (0 or 1)."""
        dropped = 0
        if len(self._queue) >= self._bus.queue_max:
            oldest = self._queue.popleft()
            gap = self._gap
            self._gap = (
                Gap(first_id=oldest.id, last_id=oldest.id, count=1)
                if gap is None
                else Gap(first_id=gap.first_id, last_id=oldest.id, count=gap.count + 1)
            )
            dropped = 1
        self._queue.append(event)
        if self._wakeup is not None:
            self._wakeup.set()
        return dropped

    def interrupt(self) -> None:
        """Make the current (or the next) wait for a live event raise :class:`Interrupted`.

        For a consumer with something to do on a schedule, an SSE heartbeat: one ticker
        interrupts the idle subscriptions instead of a timeout on every wait. Items at
        hand are still returned first; the subscription stays usable.
        """
        self._interrupted = True
        if self._wakeup is not None:
            self._wakeup.set()

    @property
    def pending(self) -> bool:
        """True when the next item is already at hand: iterating will not wait or read.

        A consumer that forwards items to a socket checks it to yield between
        back-to-back sends, so it notices a client that went away after one of them.
        """
        return bool(self._backlog) or bool(self._queue) or self._gap is not None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Item:
        if not self._entered:
            raise RuntimeError("use the subscription as `async with bus.subscribe() as sub`")
        while True:
            if self._backlog:
                event = self._backlog.popleft()
                self._cursor = event.id
                return event
            if self._replaying:
                await self._read_backlog()
                continue
            if self._gap is not None:
                unseen, self._gap = self._unseen(self._gap), None
                if unseen is not None:
                    return unseen
                continue
            if self._queue:
                event = self._queue.popleft()
                if self._cursor is not None and event.id <= self._cursor:
                    continue  # already yielded from the backlog
                self._cursor = event.id
                return event
            if self._ended:
                raise StopAsyncIteration
            if self._interrupted:
                self._interrupted = False
                raise Interrupted
            self._wakeup = anyio.Event()
            await self._wakeup.wait()

    async def _read_backlog(self) -> None:
        size = self._bus.page_size
        page = await self._bus.store.read_events(after=self._cursor or 0, limit=size)
        if self._backlog is None:
            self._backlog = collections.deque()
        self._backlog.extend(page)
        self._replaying = len(page) == size

    def _unseen(self, gap: Gap) -> Gap | None:
        """The part of ``gap`` not already yielded from the backlog."""
        if self._cursor is None or gap.first_id > self._cursor:
            return gap
        if gap.last_id <= self._cursor:
            return None
        first = self._cursor + 1
        return Gap(
            first_id=first, last_id=gap.last_id, count=min(gap.count, gap.last_id - first + 1)
        )
