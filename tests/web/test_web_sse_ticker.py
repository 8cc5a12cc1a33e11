"""The SSE fan-out's shared parts, in process on asyncio through the whole app: one ticker
per app for every stream's heartbeat (gone when the app stops), one frame per event for
every subscriber, and the garbage collector settings ``storykit serve`` uses."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from quart import Quart

from storykit.plugins import get_plugin_manager
from storykit.testing import make_settings
from storykit_quart.app import GC_THRESHOLDS, create_app

pytestmark = pytest.mark.anyio

KEYS = "me:reviewer=reviewkey12,bot:agent=agentkey123"


def build(tmp_path: Path, **env: str) -> Quart:
    settings = make_settings(tmp_path, {"API_TOKENS": KEYS} | env)
    return create_app(settings, plugin_manager=get_plugin_manager(load_entrypoints=False))


class Client:
    """One ``GET /events`` straight into the app's ASGI callable, as Hypercorn would call it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.status: int | None = None
        self.gone = anyio.Event()
        self.got = anyio.Event()

    async def receive(self) -> MutableMapping[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message.get("body"):
            self.bodies.append(message["body"])
            self.got.set()

    async def run(self, app: Quart, query: bytes = b"key=reviewkey12") -> None:
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/events",
            "raw_path": b"/events",
            "query_string": query,
            "root_path": "",
            "headers": [(b"host", b"localhost")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, self.receive, self.send)  # type: ignore[arg-type]

    async def wait_for(self, predicate: Any) -> None:
        with anyio.fail_after(10):
            while not predicate(self.bodies):
                self.got = anyio.Event()
                await self.got.wait()


async def test_idle_streams_get_heartbeats_and_nothing_runs_after_shutdown(
    tmp_path: Path,
) -> None:
    app = build(tmp_path, SSE_HEARTBEAT_INTERVAL="0.05")
    before = asyncio.all_tasks()
    with anyio.fail_after(20):  # a ticker that outlived the app would hang the shutdown
        await run_and_stop_two(app)
    # The ticker, the watchers and the streams all ended with the app.
    assert asyncio.all_tasks() - before == {asyncio.current_task()} - before


async def run_and_stop_two(app: Quart) -> None:
    async with anyio.create_task_group() as tg, app.test_app():
        clients = [Client(), Client()]
        for client in clients:
            tg.start_soon(client.run, app)
        for client in clients:
            await client.wait_for(lambda bodies: bodies.count(b":-hb\n\n") >= 2)
            assert client.status == 200
        clients[0].gone.set()  # one leaves; the other is ended by the shutdown


async def test_an_event_is_encoded_once_for_every_subscriber(tmp_path: Path) -> None:
    app = build(tmp_path, SSE_HEARTBEAT_INTERVAL="30")
    async with anyio.create_task_group() as tg, app.test_app():
        clients = [Client() for _ in range(3)]
        for client in clients:
            tg.start_soon(client.run, app)
        for client in clients:
            await client.wait_for(lambda bodies: any(b.startswith(b"retry:") for b in bodies))
        test_client = app.test_client()
        response = await test_client.post(
            "/suggestions",
            headers={"X-API-Key": "agentkey123"},
            json={"title": "t", "diff": "--- a/x.txt\n+++ b/x.txt\n@@ -0,0 +1 @@\n+hello\n"},
        )
        assert response.status_code == 201, await response.get_data()
        frames = []
        for client in clients:
            await client.wait_for(lambda bodies: any(b.startswith(b"id: ") for b in bodies))
            frames.append(next(b for b in client.bodies if b.startswith(b"id: ")))
            client.gone.set()
    assert frames[0] is frames[1] is frames[2]  # one bytes object, not three encodings


async def test_serve_freezes_start_up_objects_and_raises_the_gc_thresholds(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, {"API_TOKENS": KEYS})
    app = create_app(
        settings, plugin_manager=get_plugin_manager(load_entrypoints=False), freeze_gc=True
    )
    thresholds = gc.get_threshold()
    try:
        async with app.test_app():
            assert gc.get_threshold() == GC_THRESHOLDS
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
