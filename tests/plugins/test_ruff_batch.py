"""Concurrent ruff checks share one run (:mod:`storykit_plugins.ruff.batch`), with a fake
ruff that holds each run until the test lets it go: no timing involved."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from storykit.errors import BackendError
from storykit_plugins.ruff.batch import Batches
from storykit_plugins.ruff.tool import Diagnostic, Ruff

pytestmark = pytest.mark.anyio


class HeldRuff(Ruff):
    """Reports one diagnostic per target naming the text it saw; each run waits for ``go``."""

    def __init__(self) -> None:
        super().__init__(command=["ruff-not-run"])
        self.runs: list[list[str]] = []
        self.started = anyio.Event()
        self.go = anyio.Event()
        self.fail = False

    async def check(
        self, root: Path, targets: Sequence[str], options: Sequence[str]
    ) -> list[Diagnostic]:
        self.runs.append(list(targets))
        self.started.set()
        self.started = anyio.Event()  # the next run's
        await self.go.wait()
        self.go = anyio.Event()
        if self.fail:
            raise BackendError("ruff check failed: boom")
        return [
            {"filename": str(root / t), "code": (root / t).read_text(), "location": {"row": 1}}
            for t in targets
        ]


async def test_checks_that_arrive_during_a_run_share_the_next() -> None:
    ruff = HeldRuff()
    batches = Batches(ruff)
    results: dict[str, list[Diagnostic]] = {}

    async def check(name: str) -> None:
        results[name] = await batches.check({f"{name}.py": name.upper()}, [f"{name}.py"], [])

    async with anyio.create_task_group() as tg:
        tg.start_soon(check, "a")
        await ruff.started.wait()  # a leads a run of its own
        next_run = ruff.started
        tg.start_soon(check, "b")
        tg.start_soon(check, "c")
        await anyio.wait_all_tasks_blocked()  # b and c wait for it
        assert ruff.runs == [["0/a.py"]]
        ruff.go.set()
        await next_run.wait()
        # One of b and c leads, the other rides along (trio picks which).
        assert [sorted(t.split("/")[1] for t in run) for run in ruff.runs] == [
            ["a.py"],
            ["b.py", "c.py"],
        ]
        ruff.go.set()
    assert {
        name: [(d["filename"], d["code"]) for d in found] for name, found in results.items()
    } == {
        "a": [("a.py", "A")],
        "b": [("b.py", "B")],
        "c": [("c.py", "C")],
    }


async def test_a_cancelled_leader_hands_its_companions_on() -> None:
    ruff = HeldRuff()
    batches = Batches(ruff)
    found: list[Diagnostic] = []

    async def second() -> None:
        found.extend(await batches.check({"b.py": "B"}, ["b.py"], []))

    leader = anyio.CancelScope()

    async def first() -> None:
        with leader:
            await batches.check({"a.py": "A"}, ["a.py"], [])

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await ruff.started.wait()
        next_run = ruff.started
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        leader.cancel()  # a's own timeout, say: b must not wait for a run nobody runs
        await next_run.wait()
        assert ruff.runs == [["0/a.py"], ["0/b.py"]]
        ruff.go.set()
    assert [d["filename"] for d in found] == ["b.py"]


async def test_a_failed_run_fails_its_checks_only() -> None:
    ruff = HeldRuff()
    batches = Batches(ruff)
    ruff.fail = True
    ruff.go.set()
    with pytest.raises(BackendError, match="boom"):
        await batches.check({"a.py": "A"}, ["a.py"], [])
    ruff.fail = False
    ruff.go.set()
    assert [d["code"] for d in await batches.check({"a.py": "A2"}, ["a.py"], [])] == ["A2"]
