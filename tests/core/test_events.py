"""The event bus over a real SQLite store, on asyncio and trio."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from storykit.events import EventBus, Gap, Item, Subscription
from storykit.models import Event
from storykit.store._schema import MIGRATIONS
from storykit.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "storykit.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(db_path) as store:
        yield store


async def commit(store: SqliteStore, bus: EventBus, n: int = 1) -> list[Event]:
    """Write and publish ``n`` events the way the services do."""
    events: list[Event] = []
    for _ in range(n):
        event = await store.write("test", {"n": len(events)})
        bus.publish(event)
        events.append(event)
    return events


async def take(sub: Subscription, count: int) -> list[Item]:
    items: list[Item] = []
    with anyio.fail_after(10):
        async for item in sub:
            items.append(item)
            if len(items) == count:
                break
    return items


async def take_until(sub: Subscription, last_id: int) -> list[Item]:
    items: list[Item] = []
    with anyio.fail_after(10):
        async for item in sub:
            items.append(item)
            if isinstance(item, Event) and item.id >= last_id:
                break
    return items


def ids(items: list[Item]) -> list[int]:
    return [item.id for item in items if isinstance(item, Event)]


async def test_live_events_in_order(store: SqliteStore) -> None:
    async with EventBus(store, poll_interval=None) as bus, bus.subscribe() as sub:
        written = await commit(store, bus, 5)
        assert await take(sub, 5) == written
        assert bus.published == 5


async def test_live_only_subscription_skips_the_past(store: SqliteStore) -> None:
    async with EventBus(store, poll_interval=None) as bus:
        await commit(store, bus, 3)
        async with bus.subscribe() as sub:
            written = await commit(store, bus, 2)
            assert await take(sub, 2) == written


async def test_replay_from_any_id(store: SqliteStore) -> None:
    async with EventBus(store, poll_interval=None, page_size=3) as bus:
        written = await commit(store, bus, 10)
        for last_event_id in (0, 1, 5, 9):
            async with bus.subscribe(last_event_id=last_event_id) as sub:
                got = await take(sub, 10 - last_event_id)
            assert got == written[last_event_id:]


async def test_resuming_past_the_end_of_the_log_is_a_reset(store: SqliteStore) -> None:
    async with EventBus(store, poll_interval=None) as bus:
        await commit(store, bus, 2)
        async with bus.subscribe(last_event_id=500) as sub:  # the database was replaced
            assert (sub.reset, sub.head) == (True, 2)
            written = await commit(store, bus, 2)
            assert await take(sub, 2) == written


async def test_a_subscription_starts_at_the_head_and_names_the_epoch(store: SqliteStore) -> None:
    async with EventBus(store, poll_interval=None) as bus:
        await commit(store, bus, 3)
        async with bus.subscribe() as sub:
            assert (sub.head, sub.epoch, sub.reset) == (3, await store.epoch(), False)
            assert len(sub.epoch) == 32
            written = await commit(store, bus, 1)
            assert await take(sub, 1) == written


class CommitsWhileHeadIsRead:
    """An event log where a write commits (and is published) right after the head is read."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.bus: EventBus | None = None
        self.late: list[Event] = []

    async def read_events(self, *, after: int = 0, limit: int = 100) -> list[Event]:
        return await self.store.read_events(after=after, limit=limit)

    async def last_event_id(self) -> int:
        head = await self.store.last_event_id()
        if self.bus is not None and not self.late:
            self.late += await commit(self.store, self.bus)
        return head

    async def epoch(self) -> str:
        return await self.store.epoch()


async def test_an_event_committed_while_subscribing_is_not_lost(store: SqliteStore) -> None:
    log = CommitsWhileHeadIsRead(store)
    async with EventBus(log, poll_interval=None) as bus:
        await commit(store, bus, 2)
        log.bus = bus
        async with bus.subscribe() as sub:
            assert sub.head == 2
            assert await take(sub, 1) == log.late


async def test_resuming_with_the_epoch_replays_and_another_epoch_is_a_reset(
    store: SqliteStore,
) -> None:
    async with EventBus(store, poll_interval=None) as bus:
        written = await commit(store, bus, 4)
        epoch = await store.epoch()
        async with bus.subscribe(last_event_id=1, epoch=epoch) as sub:
            assert sub.reset is False
            assert await take(sub, 3) == written[1:]
        async with bus.subscribe(last_event_id=1, epoch="a-replaced-database") as sub:
            assert (sub.reset, sub.head, sub.epoch) == (True, 4, epoch)
            more = await commit(store, bus, 1)
            assert await take(sub, 1) == more  # no replay of another log's ids


async def test_the_epoch_is_made_once_per_database(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "a.db") as a:
        first = await a.epoch()
    async with SqliteStore(tmp_path / "a.db") as a, SqliteStore(tmp_path / "b.db") as b:
        assert await a.epoch() == first
        assert await b.epoch() != first


async def test_an_older_database_gets_an_epoch(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for step in MIGRATIONS[:2]:  # the file as version 2 left it
        for statement in step:
            conn.execute(statement)
    conn.execute("CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER)")
    conn.execute("INSERT INTO schema_version VALUES (1, 2)")
    conn.commit()
    conn.close()
    async with SqliteStore(path) as store:
        assert len(await store.epoch()) == 32


async def test_backlog_then_live_without_duplicates_or_gaps(store: SqliteStore) -> None:
    """Writes keep landing while the backlog is read in small pages: the seam is exact."""
    async with EventBus(store, poll_interval=None, page_size=2) as bus:
        await commit(store, bus, 7)
        async with anyio.create_task_group() as tg, bus.subscribe(last_event_id=3) as sub:
            tg.start_soon(commit, store, bus, 30)
            got = await take_until(sub, 37)
        assert all(isinstance(item, Event) for item in got)
        assert ids(got) == list(range(4, 38))


async def test_out_of_order_and_missing_publishes_are_filled_from_the_log(
    store: SqliteStore,
) -> None:
    async with EventBus(store, poll_interval=None) as bus, bus.subscribe() as sub:
        first, second, third, fourth = [await store.write("t", {}) for _ in range(4)]
        bus.publish(second)  # ahead of first: held back, the log is read for the hole
        bus.publish(fourth)  # and the third is never published at all
        bus.publish(first)
        assert await take(sub, 4) == [first, second, third, fourth]
        bus.publish(third)  # late: a duplicate by now
        bus.publish(second)
        fifth = (await commit(store, bus))[0]
        assert await take(sub, 1) == [fifth]
        assert bus.published == 5


async def test_overflow_drops_oldest_and_reports_the_gap(store: SqliteStore) -> None:
    drops: list[int] = []
    async with EventBus(store, queue_max=3, poll_interval=None) as bus:
        bus.on_drop = drops.append
        async with bus.subscribe() as slow, bus.subscribe() as fast:
            written: list[Event] = []
            for _ in range(10):
                written += await commit(store, bus)
                assert await take(fast, 1) == written[-1:]  # keeps up, loses nothing
            got = await take(slow, 4)
            assert got == [Gap(first_id=1, last_id=7, count=7), *written[7:]]
            assert bus.dropped == 7
            assert sum(drops) == 7
            missed = got[0]
            assert isinstance(missed, Gap)
            recovered = await store.read_events(after=missed.first_id - 1, limit=missed.count)
            assert recovered == written[:7]
            more = await commit(store, bus, 2)  # after a gap, the stream goes on
            assert await take(slow, 2) == more


async def test_overflow_during_replay_is_not_a_gap(store: SqliteStore) -> None:
    """Live events dropped while the backlog is read are read from the log anyway."""
    async with EventBus(store, queue_max=2, poll_interval=None, page_size=4) as bus:
        await commit(store, bus, 5)
        async with bus.subscribe(last_event_id=0) as sub:
            await commit(store, bus, 10)  # overflows the queue before any read
            got = await take(sub, 15)
        assert all(isinstance(item, Event) for item in got)
        assert ids(got) == list(range(1, 16))


async def test_poller_publishes_other_processes_events(db_path: Path) -> None:
    async with (
        SqliteStore(db_path) as server,
        SqliteStore(db_path) as cli,
        EventBus(server, poll_interval=0.01) as bus,
        bus.subscribe() as sub,
    ):
        mine = await commit(server, bus)
        theirs = [await cli.write("cli", {"n": n}) for n in range(3)]  # never published here
        assert await take(sub, 4) == mine + theirs
        bus.publish(theirs[1])  # a late local publish of the same id is a duplicate
        more = await commit(server, bus)
        assert await take(sub, 1) == more


async def test_publish_and_catch_up_race_without_duplicates(store: SqliteStore) -> None:
    async with EventBus(store, poll_interval=None) as bus, bus.subscribe() as sub:
        written = [await store.write("t", {}) for _ in range(20)]
        async with anyio.create_task_group() as tg:
            tg.start_soon(bus.catch_up)
            tg.start_soon(bus.catch_up)
            for event in written:
                bus.publish(event)
                await anyio.lowlevel.checkpoint()
        assert await take(sub, 20) == written
        assert bus.published == 20


async def test_unsubscribe_frees_the_subscriber(store: SqliteStore) -> None:
    async with EventBus(store, queue_max=5, poll_interval=None) as bus:
        async with bus.subscribe() as sub:
            assert bus.subscriber_count == 1
            await commit(store, bus, 3)
        assert bus.subscriber_count == 0
        assert sub._queue == type(sub._queue)()  # released at once, not at GC
        await commit(store, bus, 10)  # more than queue_max: nothing queues, nothing drops
        assert bus.dropped == 0
        assert [item async for item in sub] == []


async def test_closing_wakes_a_waiting_reader(store: SqliteStore) -> None:
    async with EventBus(store, poll_interval=None) as bus:
        sub = bus.subscribe()
        got: list[Item] = []

        async def read() -> None:
            async with sub:
                got.extend([item async for item in sub])

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                await anyio.wait_all_tasks_blocked()
                assert bus.subscriber_count == 1
                await sub.aclose()
        assert got == []
        assert bus.subscriber_count == 0


async def test_bus_exit_ends_subscriptions(store: SqliteStore) -> None:
    bus = EventBus(store, poll_interval=None)
    async with bus:
        sub = bus.subscribe()
        await sub.__aenter__()
        written = await commit(store, bus, 2)
    with anyio.fail_after(10):
        assert [item async for item in sub] == written  # drains, then ends
    await sub.aclose()


async def test_listeners_see_every_event_and_failures_are_contained(store: SqliteStore) -> None:
    seen: list[int] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    async with EventBus(store, poll_interval=None) as bus, bus.subscribe() as sub:
        bus.add_listener(broken)
        remove = bus.add_listener(lambda event: seen.append(event.id))
        written = await commit(store, bus, 3)
        assert await take(sub, 3) == written
        assert seen == [1, 2, 3]
        assert bus.listener_errors == 3
        remove()
        await commit(store, bus)
        assert seen == [1, 2, 3]
