"""Following and progress watching, written once (storykit_cli.watch): a watcher shows
its own run's progress and stops on its own run's end, not on another's, on both
transports; the follower replays what a stream dropped and resumes a lost one."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
from cli_helpers import DEADLINE

from storykit.auth import Principal, Role
from storykit.backends import Draft, GenerateRequest
from storykit.hookspecs import hookimpl
from storykit.testing import open_core
from storykit_cli import watch
from storykit_cli._local import LocalTransport
from storykit_cli._remote import RemoteTransport
from storykit_cli.transport import JSON, Missed, Position, StreamItem, StreamLost

REVIEWER = Principal(name="carol", role=Role.REVIEWER)


class QuickSource:
    name = "quick"

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        assert request.progress is not None
        await request.progress({"done": 1, "total": 1})
        return []


class GatedSource:
    """Reports once, then waits for the test to open the gate before reporting again."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = anyio.Event()

    async def generate(self, request: GenerateRequest) -> Sequence[Draft]:
        assert request.progress is not None
        await request.progress({"done": 0, "total": 1})
        await self.gate.wait()
        await request.progress({"done": 1, "total": 1})
        return []


class Sources:
    def __init__(self) -> None:
        self.gated = GatedSource()

    @hookimpl
    def storykit_register_sources(self, register: Any) -> None:
        register(QuickSource())
        register(self.gated)


def test_two_concurrent_local_runs_each_watch_their_own(tmp_path: Path) -> None:
    """The gated run is still working when the quick one ends: its watcher must keep
    going past the quick run's ``suggest.generated`` and show its own last progress."""
    sources = Sources()
    slow: list[Mapping[str, Any]] = []
    quick: list[Mapping[str, Any]] = []

    async def main() -> None:
        async with open_core(tmp_path, plugins={"sources": sources}) as core:
            transport = LocalTransport(core, REVIEWER)
            started = anyio.Event()

            def on_slow(info: Mapping[str, Any]) -> None:
                slow.append(info)
                started.set()

            async def run_slow() -> None:
                await watch.generate(transport, sources=["gated"], paths=[], on_progress=on_slow)

            with anyio.fail_after(DEADLINE):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(run_slow)
                    await started.wait()
                    await watch.generate(
                        transport, sources=["quick"], paths=[], on_progress=quick.append
                    )
                    assert len(slow) == 1  # the slow run is still at its gate
                    sources.gated.gate.set()

    anyio.run(main)
    assert [(p["source"], p["done"]) for p in quick] == [("quick", 1)]
    assert [(p["source"], p["done"]) for p in slow] == [("gated", 0), ("gated", 1)]
    assert len({p["run"] for p in slow}) == 1
    assert quick[0]["run"] != slow[0]["run"]


def sse(event_id: int, kind: str, data: Mapping[str, Any]) -> bytes:
    event = {"id": event_id, "type": kind, "at": "2026-01-01T00:00:00+00:00", "data": data}
    return f"id: {event_id}\ndata: {json.dumps(event)}\n\n".encode()


def test_a_remote_watcher_ignores_another_runs_events_and_stops_on_its_own() -> None:
    """The stream brings another run's progress and end before this run's: only this
    run's progress is shown, and the watcher waits for this run's end."""
    posted = anyio.Event()
    runs: list[str] = []
    progress: list[Mapping[str, Any]] = []

    async def stream() -> AsyncIterator[bytes]:
        yield b'event: ready\ndata: {"head": 0, "epoch": "e1"}\n\n'
        await posted.wait()  # the run has its id; others ran meanwhile
        other = {"run": "run_01JAAAAAAAAAAAAAAAAAAAAAAA", "source": "fake"}
        mine = {"run": runs[0], "source": "fake"}
        yield sse(1, "suggest.progress", other | {"done": 1, "total": 2})
        yield sse(2, "suggest.generated", {"run": other["run"], "count": 0})
        yield sse(3, "suggest.progress", mine | {"done": 1, "total": 1})
        yield sse(4, "suggest.generated", {"run": runs[0], "count": 0})

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/events":
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=stream()
            )
        assert request.url.path == "/suggest/generate"
        runs.append(json.loads(request.content)["run"])
        posted.set()
        return httpx.Response(200, json={"items": [], "count": 0, "errors": []})

    async def main() -> Any:
        mock = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=mock, base_url="http://test") as http:
            remote = RemoteTransport(http, "http://test")
            with anyio.fail_after(DEADLINE):
                return await watch.generate(
                    remote, sources=None, paths=[], on_progress=progress.append
                )

    assert anyio.run(main) == {"items": [], "count": 0, "errors": []}
    assert runs[0].startswith("run_")
    assert progress == [{"run": runs[0], "source": "fake", "done": 1, "total": 1}]


class LogTransport:
    """A transport over a list of events: each stream plays the items it is given next."""

    where = "the fake log"

    def __init__(self, events: Sequence[JSON], streams: list[list[StreamItem | None]]) -> None:
        self.events = list(events)
        self.streams = streams  # None in a stream: it breaks there
        self.opened: list[tuple[int | None, str | None]] = []

    async def read_events(self, *, after: int, limit: int) -> JSON:
        items = [e for e in self.events if e["id"] > after][:limit]
        head = self.events[-1]["id"] if self.events else 0
        return {"items": items, "last_id": items[-1]["id"] if items else after, "head": head}

    @contextlib.asynccontextmanager
    async def stream(
        self, *, after: int | None, epoch: str | None
    ) -> AsyncIterator[AsyncIterator[StreamItem]]:
        self.opened.append((after, epoch))
        plays = self.streams.pop(0)

        async def items() -> AsyncIterator[StreamItem]:
            for item in plays:
                if item is None:
                    raise StreamLost("the test broke it")
                yield item
            await anyio.sleep_forever()  # a live stream with nothing more to say

        yield items()


def event(event_id: int) -> JSON:
    return {"id": event_id, "type": "t", "at": "2026-01-01T00:00:00+00:00", "data": {}}


def test_follow_reads_what_the_stream_dropped_from_the_log_and_resumes_after_a_loss() -> None:
    log = [event(i) for i in range(1, 8)]
    transport = LogTransport(
        log,
        [
            [
                Position(head=0, epoch="e1"),
                log[0],
                Missed(first_id=2, last_id=4),  # the queue overflowed: 2..4 are in the log
                log[2],  # delivered live as well: not repeated
                log[4],
                None,
            ],
            [Position(head=5, epoch="e1"), log[5], log[6]],
        ],
    )
    notices: list[str] = []

    async def main() -> list[int]:
        got: list[int] = []
        with anyio.fail_after(DEADLINE):
            followed = watch.follow(transport, after=None, on_notice=notices.append)
            async with contextlib.aclosing(followed) as events:
                async for item in events:
                    got.append(int(item["id"]))
                    if len(got) == len(log):
                        break
        return got

    assert anyio.run(main) == [1, 2, 3, 4, 5, 6, 7]
    assert transport.opened == [(None, None), (5, "e1")]
    assert notices == [
        "lost the event stream from the fake log (the test broke it); reconnecting",
        "reconnected to the fake log",
    ]
