"""``GET /events`` on a real Hypercorn process (asyncio and trio workers), read by real clients."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from httpx_sse import connect_sse
from realserver import (
    ADMIN_KEY,
    AGENT_KEY,
    REVIEWER_KEY,
    Server,
    sample_diff,
    start_server,
)

from storykit.auth import KeyRing, parse_api_tokens
from storykit.events import EventBus
from storykit.metrics import Metrics
from storykit.ratelimit import RateLimiter
from storykit.settings import Settings
from storykit.store.sqlite import SqliteStore
from storykit.testing import make_settings
from storykit_quart.sse import SSEMiddleware
from storykit_quart.state import HostState

WORKERS = ["asyncio", "trio"]
FAST = {"SSE_HEARTBEAT_INTERVAL": "0.3"}


@pytest.fixture(params=WORKERS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path, worker=request.param, env=FAST)
    yield srv
    srv.stop()


def submit(server: Server, n: int) -> str:
    r = httpx.post(
        f"{server.url}/suggestions",
        headers={"X-API-Key": AGENT_KEY},
        json={"title": f"change {n}", "diff": sample_diff(n)},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def real_events(source: object) -> Iterator[object]:
    """httpx-sse also yields the ``retry:`` block as an empty event; skip those."""
    return (e for e in source.iter_sse() if e.data)  # type: ignore[attr-defined]


def gauge(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(r"^storykit_sse_connections (\S+)$", text, re.M)
    assert match, text
    return float(match.group(1))


def wait_until(predicate: object, deadline: float = 20.0) -> None:
    import time

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met before the deadline")


def test_stream_has_retry_ids_heartbeats_and_headers(server: Server) -> None:
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{server.url}/events", params={"key": REVIEWER_KEY}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store, no-transform"
        assert response.headers["x-accel-buffering"] == "no"
        lines = response.iter_lines()
        assert next(lines) == "retry: 2000"
        submit(server, 1)
        seen: list[str] = []
        for line in lines:
            seen.append(line)
            if line == ":-hb" and any(s.startswith("data:") for s in seen):
                break
        ids = [s for s in seen if s.startswith("id: ")]
        data = [json.loads(s[6:]) for s in seen if s.startswith("data: ")]
        assert ids == ["id: 1"]
        assert data[0]["type"] == "suggest.submitted" and data[0]["id"] == 1


def test_resume_gets_exactly_what_was_missed_in_order(server: Server) -> None:
    for n in range(1, 4):
        submit(server, n)
    headers = {"X-API-Key": REVIEWER_KEY, "Last-Event-ID": "1"}
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(client, "GET", f"{server.url}/events", headers=headers) as source,
    ):
        got: list[int] = []
        for event in real_events(source):
            got.append(int(event.id))
            if len(got) == 2:
                submit(server, 4)
            if len(got) == 3:
                break
    assert got == [2, 3, 4]
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(
            client, "GET", f"{server.url}/events?key={REVIEWER_KEY}&last_event_id=3"
        ) as source,
    ):
        first = next(real_events(source))  # type: ignore[call-overload]
        assert (int(first.id), json.loads(first.data)["type"]) == (4, "suggest.submitted")


def test_a_disconnected_client_is_released(server: Server) -> None:
    with (
        httpx.Client(timeout=10) as client,
        client.stream("GET", f"{server.url}/events", params={"key": REVIEWER_KEY}) as response,
    ):
        lines = response.iter_lines()  # keep a reference: a dropped iterator closes the stream
        next(lines)
        assert gauge(server) == 1
    wait_until(lambda: gauge(server) == 0)


def test_tickets_work_once_and_keys_stay_out_of_the_log(server: Server) -> None:
    ticket = httpx.post(f"{server.url}/events/ticket", headers={"X-API-Key": AGENT_KEY}).json()
    assert ticket["expires_in"] == 60
    with httpx.Client(timeout=10) as client:
        with client.stream("GET", f"{server.url}/events", params={"ticket": ticket["ticket"]}) as r:
            assert r.status_code == 200
            assert next(iter(r.iter_lines())) == "retry: 2000"
        again = client.get(f"{server.url}/events", params={"ticket": ticket["ticket"]})
        assert again.status_code == 401
        assert again.headers["content-type"] == "application/problem+json"
        assert client.get(f"{server.url}/events", params={"key": "nope-nope"}).status_code == 401
    server.stop()
    log = server.log_file.read_text()
    assert REVIEWER_KEY not in log and AGENT_KEY not in log and ticket["ticket"] not in log


@pytest.fixture
def shared_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for two servers (skipped when there is none)."""
    import os
    import secrets

    import psycopg
    from psycopg import sql

    admin_url = os.environ.get(
        "STORYKIT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is unreachable ({exc})")
        pytest.skip(f"PostgreSQL is unreachable ({exc}); set STORYKIT_TEST_POSTGRES")
    name = f"storykit_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(admin_url)
    user, host = info.get("user", "postgres"), info.get("host", "127.0.0.1")
    try:
        yield f"postgresql://{user}@{host}:{info.get('port', 5432)}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_ticket_from_one_replica_works_once_on_another(
    tmp_path: Path, shared_database: str
) -> None:
    """Two servers on one PostgreSQL database are two replicas (SPEC §8)."""
    env = FAST | {"DATABASE_URL": shared_database}
    one = start_server(tmp_path, env=env, data_dir=tmp_path / "one")
    other = start_server(tmp_path, env=env, data_dir=tmp_path / "other")
    try:
        issued = httpx.post(f"{one.url}/events/ticket", headers={"X-API-Key": AGENT_KEY})
        ticket = issued.json()["ticket"]
        with httpx.Client(timeout=10) as client:
            url = f"{other.url}/events"
            with client.stream("GET", url, params={"ticket": ticket}) as r:
                assert r.status_code == 200
                assert next(iter(r.iter_lines())) == "retry: 2000"
            assert client.get(url, params={"ticket": ticket}).status_code == 401
            assert client.get(f"{one.url}/events", params={"ticket": ticket}).status_code == 401
    finally:
        one.stop()
        other.stop()


def test_events_is_never_rate_limited(tmp_path: Path) -> None:
    srv = start_server(tmp_path, env={"RATE_LIMIT_RPS": "0.01", "RATE_LIMIT_BURST": "1"} | FAST)
    try:
        statuses = [
            httpx.get(f"{srv.url}/plans", headers={"X-API-Key": ADMIN_KEY}).status_code
            for _ in range(3)
        ]
        assert statuses[-1] == 429
        with (
            httpx.Client(timeout=10) as client,
            client.stream("GET", f"{srv.url}/events", headers={"X-API-Key": ADMIN_KEY}) as response,
        ):
            assert response.status_code == 200
    finally:
        srv.stop()


@pytest.mark.parametrize("worker", WORKERS)
def test_shutdown_ends_streams_and_clients_resume_with_nothing_lost(
    tmp_path: Path, worker: str
) -> None:
    srv = start_server(tmp_path, worker=worker, env=FAST)
    try:
        submit(srv, 1)
        with (
            httpx.Client(timeout=10) as client,
            connect_sse(
                client,
                "GET",
                f"{srv.url}/events",
                headers={"X-API-Key": REVIEWER_KEY, "Last-Event-ID": "0"},
            ) as source,
        ):
            events = real_events(source)
            last = int(next(events).id)  # type: ignore[attr-defined]
            srv.proc.send_signal(signal.SIGTERM)
            assert list(events) == []  # the stream ends instead of hanging
        assert srv.proc.wait(timeout=10) == 0
        srv2 = start_server(tmp_path, worker=worker, env=FAST, port=srv.port, data_dir=srv.data_dir)
        try:
            submit(srv2, 2)
            with (
                httpx.Client(timeout=10) as client,
                connect_sse(
                    client,
                    "GET",
                    f"{srv2.url}/events",
                    headers={"X-API-Key": REVIEWER_KEY, "Last-Event-ID": str(last)},
                ) as source,
            ):
                resumed = next(real_events(source))  # type: ignore[call-overload]
            assert (last, int(resumed.id)) == (1, 2)
        finally:
            srv2.stop()
    finally:
        srv.stop()


# -- in process: clients that stop reading -------------------------------------------

SCOPE = {
    "type": "http",
    "path": "/events",
    "method": "GET",
    "query_string": b"key=reviewkey12",
    "headers": [],
}


def in_process_sse(settings: Settings, bus: EventBus, metrics: Metrics) -> SSEMiddleware:
    """The real SSE handler over a real store and bus, without the rest of the app."""

    class Core:
        pass

    core = Core()
    core.bus = bus  # type: ignore[attr-defined]
    state = HostState(
        settings=settings,
        keys=KeyRing(parse_api_tokens("me:reviewer=reviewkey12")),
        limiter=RateLimiter(5, 10),
        metrics=metrics,
    )
    state.core = core  # type: ignore[assignment]
    return SSEMiddleware(lambda *a: None, state)  # type: ignore[arg-type,return-value]


@pytest.mark.anyio
async def test_overflow_drops_the_oldest_and_tells_the_client_which_ids(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, {"SSE_QUEUE_MAX": "2", "SSE_HEARTBEAT_INTERVAL": "30"})
    settings.ensure_dirs()
    metrics = Metrics()
    async with SqliteStore(settings.db_path) as store:
        bus = EventBus(store, queue_max=2, poll_interval=None)
        bus.on_drop = metrics.sse_queue_dropped.inc

        sse = in_process_sse(settings, bus, metrics)
        sent: list[bytes] = []
        release = anyio.Event()
        started = anyio.Event()
        disconnect = anyio.Event()

        async def send(message: dict[str, object]) -> None:
            body = message.get("body")
            if isinstance(body, bytes) and body.startswith(b"retry"):
                sent.append(body)
                started.set()
                await release.wait()  # the client stops reading here
                return
            if isinstance(body, bytes) and body:
                sent.append(body)
                if b"id: 5" in body:
                    disconnect.set()

        async def receive() -> dict[str, object]:
            await disconnect.wait()
            return {"type": "http.disconnect"}

        scope = SCOPE
        async with bus, anyio.create_task_group() as tg:
            tg.start_soon(sse, scope, receive, send)
            await started.wait()
            for n in range(5):
                bus.publish(await store.write("test.event", {"n": n}))
            release.set()
        frames = b"".join(sent[1:]).decode()
        assert 'event: gap\ndata: {"first_id": 1, "last_id": 3, "count": 3}' in frames
        assert [int(i) for i in re.findall(r"^id: (\d+)$", frames, re.M)] == [4, 5]
        assert frames.index("event: gap") < frames.index("id: 4")
        assert metrics.sse_queue_dropped._value.get() == 3


@pytest.mark.anyio
async def test_a_stalled_client_does_not_hold_up_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storykit_quart.sse as sse_module

    monkeypatch.setattr(sse_module, "SEND_TIMEOUT", 0.2)
    settings = make_settings(tmp_path, {"SSE_HEARTBEAT_INTERVAL": "30"})
    settings.ensure_dirs()
    async with SqliteStore(settings.db_path) as store:
        bus = EventBus(store, queue_max=100, poll_interval=None)

        sse = in_process_sse(settings, bus, Metrics())
        scope = SCOPE
        healthy: list[bytes] = []
        opened = [anyio.Event(), anyio.Event()]
        got_all = anyio.Event()
        stalled_started = anyio.Event()
        stalled_ended = anyio.Event()

        async def healthy_send(message: dict[str, object]) -> None:
            body = message.get("body")
            if isinstance(body, bytes) and body.startswith(b"retry"):
                opened[0].set()
            if isinstance(body, bytes) and body.startswith(b"id: "):
                healthy.append(body)
                if len(healthy) == 3:
                    got_all.set()

        async def stalled_send(message: dict[str, object]) -> None:
            body = message.get("body")
            if isinstance(body, bytes) and body.startswith(b"retry"):
                opened[1].set()
            if isinstance(body, bytes) and body.startswith(b"id: "):
                stalled_started.set()
                await anyio.sleep_forever()  # this client never reads again

        async def never_disconnects() -> dict[str, object]:
            await anyio.sleep_forever()
            raise AssertionError

        async def run_stalled() -> None:
            await sse(scope, never_disconnects, stalled_send)
            stalled_ended.set()

        async with bus, anyio.create_task_group() as tg:
            tg.start_soon(run_stalled)
            tg.start_soon(sse, scope, never_disconnects, healthy_send)
            for event in opened:  # both subscribed (the handler subscribes before it writes)
                await event.wait()
            for n in range(3):
                bus.publish(await store.write("test.event", {"n": n}))
            with anyio.fail_after(10):
                await got_all.wait()
                await stalled_ended.wait()  # dropped after the send timeout
            assert bus.subscriber_count == 1
            tg.cancel_scope.cancel()
        assert stalled_started.is_set()
