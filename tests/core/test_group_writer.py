"""The group-commit writer: one wake-up per batch, and event data as the log gives it back."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from storykit.models import Event
from storykit.store._batch import PendingWrite, prepare
from storykit.store._writer import GroupWriter
from storykit.store.postgres import PostgresStore
from storykit.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


def _pending(n: int) -> PendingWrite:
    return prepare("t", {"n": n}, suggestions=(), plans=(), policy_config=None, expect=None)


async def test_a_batch_of_writes_wakes_its_callers_with_one_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[object] = []
    real_event = anyio.Event

    def counting_event() -> anyio.Event:
        made.append(object())
        return real_event()

    monkeypatch.setattr(anyio, "Event", counting_event)  # the module the writer calls
    commits: list[int] = []

    async def commit(batch: Sequence[PendingWrite]) -> bool:
        commits.append(len(batch))
        for i, w in enumerate(batch, 1):
            w.event = Event(id=i, type=w.event_type, data=w.data)
        return True

    group = GroupWriter(commit, max_batch=1000)
    results: list[Event] = []

    pendings = [_pending(n) for n in range(100)]
    for pending in pendings:  # nothing to wake a caller with is made per write
        assert not any(
            isinstance(getattr(pending, f.name), real_event)
            for f in dataclasses.fields(PendingWrite)
        )

    async def write(pending: PendingWrite) -> None:
        results.append(await group.submit(pending))

    async with anyio.create_task_group() as tg:
        for pending in pendings:
            tg.start_soon(write, pending)
        await anyio.wait_all_tasks_blocked()  # all 100 queued, the writer not yet started
        tg.start_soon(group.run)
        await anyio.wait_all_tasks_blocked()
        group.close()
    assert commits == [100]
    assert sorted(e.data["n"] for e in results) == list(range(100))
    assert len(made) <= 2  # the batch's and the writer's own wake-up, not one per write


async def test_writes_beyond_max_batch_wait_for_the_next_batch() -> None:
    async def commit(batch: Sequence[PendingWrite]) -> bool:
        for w in batch:
            w.event = Event(id=1, type=w.event_type, data=w.data)
        return True

    group = GroupWriter(commit, max_batch=3)
    results: list[int] = []

    async def write(n: int) -> None:
        results.append((await group.submit(_pending(n))).data["n"])

    async with anyio.create_task_group() as tg:
        for n in range(7):
            tg.start_soon(write, n)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(group.run)
        await anyio.wait_all_tasks_blocked()
        group.close()
    assert sorted(results) == list(range(7))
    assert group.transactions == 3


async def test_event_data_is_what_the_log_gives_back_and_not_the_callers_object(
    tmp_path: Path,
) -> None:
    flat = {"id": "sug_1", "n": 1, "ok": True, "x": None, "f": 1.5}
    nested = {"ids": ("a", "b"), "inner": {"k": 1}}
    async with SqliteStore(tmp_path / "db.sqlite") as store:
        first = await store.write("t", flat)
        second = await store.write("t", nested)
        flat["n"] = 2  # the caller changes its dict afterwards
        replayed = await store.read_events(after=0)
    assert first.data == {"id": "sug_1", "n": 1, "ok": True, "x": None, "f": 1.5}
    assert second.data == {"ids": ["a", "b"], "inner": {"k": 1}}  # a tuple reads back a list
    assert [e.data for e in replayed] == [first.data, second.data]


def test_a_postgres_store_can_be_made_outside_an_event_loop() -> None:
    PostgresStore("postgresql://nobody@127.0.0.1:1/none")  # opening it is what connects
