"""``Subscription.interrupt``: how one ticker wakes idle subscribers (SSE heartbeats)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from storykit.events import EventBus, Interrupted
from storykit.models import Event
from storykit.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


async def test_an_interrupt_ends_a_wait_and_the_subscription_goes_on(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "storykit.db") as store:
        bus = EventBus(store, poll_interval=None)
        async with bus, bus.subscribe() as sub:
            waiting = anyio.Event()
            outcome: list[object] = []

            async def wait_for_one() -> None:
                waiting.set()
                try:
                    outcome.append(await sub.__anext__())
                except Interrupted:
                    outcome.append("interrupted")

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(wait_for_one)
                    await waiting.wait()
                    await anyio.wait_all_tasks_blocked()
                    sub.interrupt()
            assert outcome == ["interrupted"]
            # Once only, and what arrives afterwards is still delivered.
            event = await store.write("test", {"n": 1})
            bus.publish(event)
            with anyio.fail_after(10):
                assert await sub.__anext__() == event


async def test_items_at_hand_come_before_an_interrupt(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "storykit.db") as store:
        bus = EventBus(store, poll_interval=None)
        async with bus, bus.subscribe() as sub:
            event = await store.write("test", {"n": 1})
            bus.publish(event)
            sub.interrupt()  # before the consumer waits: the next wait ends at once
            with anyio.fail_after(10):
                first = await sub.__anext__()
                with pytest.raises(Interrupted):
                    await sub.__anext__()
            assert isinstance(first, Event) and first.id == event.id
