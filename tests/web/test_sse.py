"""``GET /events`` on a real Hypercorn process (asyncio and trio workers), read by real clients."""

from __future__ import annotations

import json
import re
import signal
import socket
import struct
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import structlog
from httpx_sse import EventSource, ServerSentEvent, connect_sse
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
from storykit.testing import make_settings, wait_until
from storykit_quart.pipeline import CALL, Call
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


def real_events(source: EventSource) -> Iterator[ServerSentEvent]:
    """The events themselves: not ``ready``, ``reset`` or ``gap``."""
    return (e for e in source.iter_sse() if e.event == "message" and e.data)


def gauge(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(r"^storykit_sse_connections (\S+)$", text, re.M)
    assert match, text
    return float(match.group(1))


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
        assert next(lines) == "event: ready"
        ready = next(lines)
        assert ready.startswith("data: ") and json.loads(ready[6:])["head"] == 0
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
        first = next(real_events(source))
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
            last = int(next(events).id)
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
                resumed = next(real_events(source))
            assert (last, int(resumed.id)) == (1, 2)
        finally:
            srv2.stop()
    finally:
        srv.stop()


# -- in process: clients that stop reading -------------------------------------------


def checked_scope(query: bytes = b"") -> dict[str, object]:
    """A ``GET /events`` scope as the request pipeline hands it on: the key checked."""
    call = Call("test-request", None)
    call.principal = KeyRing(parse_api_tokens("me:reviewer=reviewkey12")).lookup("reviewkey12")
    return {
        "type": "http",
        "path": "/events",
        "method": "GET",
        "query_string": query,
        "headers": [],
        CALL: call,
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
    return SSEMiddleware(lambda *a: None, state)  # type: ignore[arg-type]


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

        async def send(message: MutableMapping[str, Any]) -> None:
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

        scope = checked_scope()
        async with bus, sse.running(), anyio.create_task_group() as tg:
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
async def test_a_stalled_client_does_not_hold_up_the_others(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, {"SSE_HEARTBEAT_INTERVAL": "30", "SSE_SEND_TIMEOUT": "0.2"})
    settings.ensure_dirs()
    metrics = Metrics()
    async with SqliteStore(settings.db_path) as store:
        bus = EventBus(store, queue_max=100, poll_interval=None)
        scope = checked_scope()
        healthy: list[bytes] = []
        opened = [anyio.Event(), anyio.Event()]
        got_all = anyio.Event()
        stalled_started = anyio.Event()
        stalled_ended = anyio.Event()

        async def healthy_send(message: MutableMapping[str, Any]) -> None:
            body = message.get("body")
            if isinstance(body, bytes) and body.startswith(b"retry"):
                opened[0].set()
            if isinstance(body, bytes) and body.startswith(b"id: "):
                healthy.append(body)
                if len(healthy) == 3:
                    got_all.set()

        async def stalled_send(message: MutableMapping[str, Any]) -> None:
            body = message.get("body")
            if isinstance(body, bytes) and body.startswith(b"retry"):
                opened[1].set()
            if isinstance(body, bytes) and body.startswith(b"id: "):
                stalled_started.set()
                await anyio.sleep_forever()  # this client never reads again

        async def never_disconnects() -> dict[str, object]:
            await anyio.sleep_forever()
            raise AssertionError

        with structlog.testing.capture_logs() as logs:
            sse = in_process_sse(settings, bus, metrics)

            async def run_stalled() -> None:
                await sse(scope, never_disconnects, stalled_send)
                stalled_ended.set()

            async with bus, sse.running(), anyio.create_task_group() as tg:
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
        assert metrics.sse_streams_dropped.labels(reason="slow")._value.get() == 1
        drops = [e for e in logs if e["event"] == "sse stream dropped"]
        assert len(drops) == 1
        assert drops[0]["reason"] == "slow" and drops[0]["agent"] == "me"
        assert drops[0]["last_event_id"] is None  # its first event never got out
        assert "reviewkey12" not in repr(drops)


@pytest.mark.anyio
async def test_the_first_send_after_the_client_left_is_the_last(tmp_path: Path) -> None:
    """Sends into a dead connection return as if they worked (Hypercorn swallows the
    error) and the disconnect comes through receive: the stream must stop there, not
    after the rest of its backlog."""
    settings = make_settings(tmp_path, {"SSE_HEARTBEAT_INTERVAL": "30"})
    settings.ensure_dirs()
    async with SqliteStore(settings.db_path) as store:
        for n in range(50):
            await store.write("test.event", {"n": n})
        bus = EventBus(store, poll_interval=None)
        sse = in_process_sse(settings, bus, Metrics())
        inbox_in, inbox_out = anyio.create_memory_object_stream[dict[str, object]](10)
        sent: list[int] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            body = message.get("body")
            if isinstance(body, bytes) and body.startswith(b"id: "):
                sent.append(int(body.split(b"\n")[0][4:]))
                if len(sent) == 3:  # the client is gone after this one
                    inbox_in.send_nowait({"type": "http.disconnect"})

        async def receive() -> dict[str, object]:
            return await inbox_out.receive()

        scope = checked_scope(b"last_event_id=0")
        async with bus, sse.running():
            with anyio.fail_after(10):
                await sse(scope, receive, send)
        assert sent == [1, 2, 3]
        assert bus.subscriber_count == 0
        inbox_in.close()
        inbox_out.close()


# -- the stream's start: ready, head, reset -------------------------------------------


def sse_client_events(url: str, **params: str) -> Iterator[Any]:
    """Every SSE event (``ready`` and ``reset`` included), from a GET on ``/events``."""
    with (
        httpx.Client(timeout=10) as client,
        connect_sse(
            client, "GET", f"{url}/events", params={"key": REVIEWER_KEY, **params}
        ) as source,
    ):
        yield from source.iter_sse()


def test_a_list_head_is_where_the_stream_resumes_without_a_loss(server: Server) -> None:
    submit(server, 1)
    submit(server, 2)
    listed = httpx.get(f"{server.url}/suggestions", headers={"X-API-Key": AGENT_KEY}).json()
    assert listed["head"] == 2 and len(listed["items"]) == 2
    plans = httpx.get(f"{server.url}/plans", headers={"X-API-Key": AGENT_KEY}).json()
    assert plans["head"] == 2
    late = submit(server, 3)  # committed after the snapshot, before the stream opens
    log = httpx.get(
        f"{server.url}/events/log",
        params={"after": 0, "limit": 1},
        headers={"X-API-Key": AGENT_KEY},
    ).json()
    assert (log["last_id"], log["head"]) == (1, 3)
    events = sse_client_events(server.url, last_event_id=str(listed["head"]))
    ready = next(events)
    assert ready.event == "ready"
    position = json.loads(ready.data)
    assert position["head"] == 3 and len(position["epoch"]) == 32
    first = next(e for e in events if e.event == "message")
    assert (int(first.id), json.loads(first.data)["data"]["id"]) == (3, late)
    events.close()  # type: ignore[attr-defined]


def test_resuming_from_another_log_is_a_reset_not_a_silent_clamp(server: Server) -> None:
    submit(server, 1)
    submit(server, 2)
    events = sse_client_events(server.url)
    epoch = json.loads(next(events).data)["epoch"]
    events.close()  # type: ignore[attr-defined]
    for n, asked in enumerate(
        [{"last_event_id": "99"}, {"last_event_id": "1", "epoch": "0" * 32}], start=3
    ):
        events = sse_client_events(server.url, **asked)
        ready, reset = next(events), next(events)
        assert (ready.event, reset.event) == ("ready", "reset"), asked
        assert json.loads(reset.data) == {"head": n - 1, "epoch": epoch}
        submit(server, n)
        after = next(events)
        assert (after.event, int(after.id)) == ("message", n), asked  # nothing replayed
        events.close()  # type: ignore[attr-defined]
    events = sse_client_events(server.url, last_event_id="1", epoch=epoch)
    assert next(events).event == "ready"
    after = next(events)
    assert (after.event, int(after.id)) == ("message", 2)  # the same log: a plain resume
    events.close()  # type: ignore[attr-defined]


# -- clients that stop reading or vanish, on a real server -----------------------------


def fill_log(data_dir: Path, count: int, size: int) -> int:
    """Write ``count`` events of ``size`` bytes to the server's database; their total size."""

    async def write() -> None:
        async with SqliteStore(data_dir / "storykit.db") as store:
            for start in range(0, count, 100):  # concurrent writes share one commit
                async with anyio.create_task_group() as tg:
                    for n in range(start, min(count, start + 100)):
                        tg.start_soon(store.write, "test.bulk", {"n": n, "pad": "x" * size})

    anyio.run(write)
    return count * size


def stream_socket(server: Server, query: str) -> socket.socket:
    """A raw client socket with a small receive buffer, the request sent, nothing read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    sock.settimeout(20)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(f"GET /events?{query} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return sock


def read_until_closed(sock: socket.socket) -> tuple[int, str]:
    """Read until the server ends the connection: (bytes read, "eof" or "reset")."""
    got = 0
    try:
        while chunk := sock.recv(65536):
            got += len(chunk)
    except ConnectionResetError:
        return got, "reset"
    return got, "eof"


def metric(server: Server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert match, text
    return float(match.group(1))


@pytest.mark.parametrize("worker", WORKERS)
def test_a_client_that_stops_reading_has_its_connection_closed(tmp_path: Path, worker: str) -> None:
    total = fill_log(tmp_path / "data", 300, 10_000)  # far more than the socket buffers
    srv = start_server(tmp_path, worker=worker, env=FAST | {"SSE_SEND_TIMEOUT": "0.5"})
    dropped = 'storykit_sse_streams_dropped_total{reason="slow"}'
    try:
        assert metric(srv, dropped) == 0
        sock = stream_socket(srv, f"key={REVIEWER_KEY}&last_event_id=0")
        try:
            wait_until(lambda: metric(srv, dropped) == 1)
            wait_until(lambda: gauge(srv) == 0)
            got, how = read_until_closed(sock)  # the client wakes up: the server is gone
        finally:
            sock.close()
        # Reset, not drained: the client gets what its own buffer held, not the backlog.
        assert how == "reset" and got < total // 10, (how, got)
    finally:
        srv.stop()
    drops = [
        json.loads(line)
        for line in srv.log_file.read_text().splitlines()
        if "sse stream dropped" in line
    ]
    assert len(drops) == 1
    assert drops[0]["reason"] == "slow" and drops[0]["connection_reset"] is True
    assert REVIEWER_KEY not in srv.log_file.read_text()


@pytest.mark.parametrize("worker", WORKERS)
def test_a_client_gone_mid_replay_is_not_written_to_again(tmp_path: Path, worker: str) -> None:
    fill_log(tmp_path / "data", 1200, 1000)
    srv = start_server(tmp_path, worker=worker, env=FAST)
    try:
        sock = stream_socket(srv, f"key={REVIEWER_KEY}&last_event_id=0")
        got = 0
        while got < 20_000:  # well into the replay of its backlog
            got += len(sock.recv(4096))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # a cut: RST
        wait_until(lambda: gauge(srv) == 0)
        submit(srv, 1)  # the server is fine afterwards
    finally:
        srv.stop()
    log = srv.log_file.read_text()
    assert "socket.send() raised exception" not in log
    assert "Error in ASGI Framework" not in log
