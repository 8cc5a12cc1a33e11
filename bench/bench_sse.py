"""SSE fan-out: storykit's ``GET /events`` vs a minimal sse-starlette app on uvicorn.

    python bench/bench_sse.py                                    # 1000 subscribers, 10/s, 30 s
    python bench/bench_sse.py --subscribers 100 --seconds 5      # a quick look
    python bench/bench_sse.py --short                            # 20 subscribers, 1 s: does it run

For each server in turn, in one run:

1. warm up (a few subscribers, a few events), then read the server's VmRSS with no
   subscriber;
2. open ``--subscribers`` streams, wait until the server itself counts them all, read
   VmRSS again: the difference divided by the count is the memory of an idle subscriber;
3. publish ``--rate`` events/s for ``--seconds`` s and time every delivery: receive time
   minus the event's ``at`` (stamped by the server when it made the event; same machine,
   same clock). storykit publishes through ``POST /suggestions`` with an agent key, so its
   figures include the SQLite commit of each event; the peer (``bench/_sse_peer.py``)
   broadcasts straight from memory;
4. close every stream and time how long the server takes to let them all go.

The subscribers are raw asyncio protocols in this one process (no HTTP client library),
each a few hundred bytes of parsing per event, so the client is not what is measured; its
CPU use is printed to show that. With ``--pin`` (the default) the server runs on CPU 0 and
this process on CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import resource
import sys
import tempfile
import time
from array import array
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
from _servers import (
    AGENT_KEY,
    BENCH_KEY,
    HOST,
    PYTHON,
    Server,
    free_port,
    machine_cpu_seconds,
    raise_open_files,
    start_server,
    storykit_argv,
    storykit_env,
)

SERVERS = ("storykit", "peer")
LABELS = {"storykit": "storykit (Hypercorn)", "peer": "sse-starlette (uvicorn)"}
GOAL_P99_MS = 50.0
GOAL_KIB_PER_SUBSCRIBER = 25.0
CONNECT_CONCURRENCY = 64  # below Hypercorn's listen backlog (100): no SYN retries at 1 s
DEADLINE = 60.0  # seconds for any one thing the benchmark waits for


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return float("nan")
    rank = max(1, round(p / 100 * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


@dataclasses.dataclass
class Tally:
    """What every subscriber received, shared by all of them (one event loop, no locks)."""

    at: dict[int, float] = dataclasses.field(default_factory=dict)  # event id -> its `at`
    # Flat arrays, not a list of tuples: hundreds of thousands of tracked tuples would make
    # this process's own garbage collector pause, and the pauses would read as latency.
    ids: array[int] = dataclasses.field(default_factory=lambda: array("q"))
    times: array[float] = dataclasses.field(default_factory=lambda: array("d"))
    recording: bool = False

    def event(self, block: bytes, received: float) -> None:
        """One SSE event block (lines joined by \\n, no blank line)."""
        if not block.startswith(b"id: "):
            return  # retry:, a heartbeat comment or a ping
        newline = block.find(b"\n")
        event_id = int(block[4:newline])
        if event_id not in self.at:
            # Decoded once per event, not once per subscriber: all of them get the same.
            data = block[block.index(b"data: ", newline) + 6 :]
            self.at[event_id] = datetime.fromisoformat(json.loads(data)["at"]).timestamp()
        if self.recording:
            self.ids.append(event_id)
            self.times.append(received)


class Subscriber(asyncio.Protocol):
    """One SSE stream over a raw socket: HTTP/1.1 head, chunked body, SSE event blocks."""

    def __init__(self, request: bytes, tally: Tally) -> None:
        loop = asyncio.get_running_loop()
        self.request = request
        self.tally = tally
        self.ready: asyncio.Future[None] = loop.create_future()  # a 200 head has arrived
        self.gone: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.head = bytearray()
        self.raw = bytearray()  # chunked bytes not yet decoded
        self.body = bytearray()  # decoded bytes not yet a whole event
        self.chunk_left = 0
        self.in_body = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before the response: {exc}"))
        if not self.gone.done():
            self.gone.set_result(None)

    def data_received(self, data: bytes) -> None:
        received = time.time()
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.head[:end]).lower()
            status = int(head.split(b" ", 2)[1])
            if status != 200 or b"transfer-encoding: chunked" not in head:
                self.ready.set_exception(ConnectionError(f"unexpected response: {head!r}"))
                assert self.transport is not None
                self.transport.close()
                return
            data = bytes(self.head[end + 4 :])
            self.in_body = True
            self.ready.set_result(None)
        self.raw += data
        self._dechunk()
        self._split(received)

    def _dechunk(self) -> None:
        raw, pos = self.raw, 0
        while pos < len(raw):
            if self.chunk_left:
                take = min(self.chunk_left, len(raw) - pos)
                self.body += raw[pos : pos + take]
                pos += take
                self.chunk_left -= take
                continue
            newline = raw.find(b"\r\n", pos)
            if newline < 0:
                break
            size_line = raw[pos:newline]
            pos = newline + 2
            if size_line:  # an empty line is the CRLF that ends the previous chunk
                self.chunk_left = int(size_line.split(b";", 1)[0], 16)
        del raw[:pos]

    def _split(self, received: float) -> None:
        body = self.body
        if b"\r" in body:  # sse-starlette ends lines with CRLF; storykit with LF
            body[:] = body.replace(b"\r\n", b"\n")
        while (end := body.find(b"\n\n")) >= 0:
            self.tally.event(bytes(body[:end]), received)
            del body[: end + 2]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclasses.dataclass
class Run:
    server: str
    subscribers: int = 0
    published: int = 0
    delivered: int = 0
    latencies_ms: list[float] = dataclasses.field(default_factory=list)
    rss_idle0_kib: int = 0
    rss_idle_kib: int = 0
    server_cpu: float = 0.0  # cores, while publishing
    client_cpu: float = 0.0
    other_cpu: float = 0.0  # cores used by other processes on the machine: noise
    release_s: float = 0.0

    @property
    def kib_per_subscriber(self) -> float:
        return (self.rss_idle_kib - self.rss_idle0_kib) / max(1, self.subscribers)


class Target:
    """How the benchmark talks to one kind of server."""

    def __init__(self, kind: str, server: Server, client: httpx.AsyncClient) -> None:
        self.kind = kind
        self.server = server
        self.client = client
        self.port = int(server.url.rsplit(":", 1)[1])
        self.request = (
            f"GET /events HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nAccept: text/event-stream\r\n"
            f"X-API-Key: {BENCH_KEY}\r\n\r\n"
        ).encode()

    async def publish(self, n: int) -> None:
        if self.kind == "storykit":
            body: dict[str, object] = {
                "title": f"bench event {n}",
                "diff": f"--- a/bench.py\n+++ b/bench.py\n@@ -1 +1 @@\n-x = 0\n+x = {n}\n",
                "rationale": "bench_sse",
            }
            response = await self.client.post(
                self.server.url + "/suggestions", json=body, headers={"X-API-Key": AGENT_KEY}
            )
        else:
            # Shaped and sized like storykit's suggest.submitted data, so frames match.
            data = {
                "id": f"sug_{n:026d}",
                "title": f"bench event {n}",
                "status": "pending",
                "risk": "low",
                "source": "api",
                "agent": "agent",
                "revision": 1,
                "diff_hash": "sha256:" + f"{n:064x}",
                "files": ["bench.py"],
            }
            response = await self.client.post(
                self.server.url + "/publish", json={"type": "suggest.submitted", "data": data}
            )
        response.raise_for_status()

    async def subscriber_count(self) -> int:
        if self.kind == "storykit":
            text = (await self.client.get(self.server.url + "/metrics")).text
            for line in text.splitlines():
                if line.startswith("storykit_sse_connections "):
                    return int(float(line.split()[1]))
            raise RuntimeError("storykit_sse_connections is missing from /metrics")
        return int((await self.client.get(self.server.url + "/stats")).json()["subscribers"])


async def poll(condition: Callable[[], Awaitable[bool]], what: str, server: Server) -> None:
    """Await ``condition`` every 50 ms until it holds; fail after DEADLINE seconds."""
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        server.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {DEADLINE:g}s waiting for {what}")
        await asyncio.sleep(0.05)


async def subscribe(target: Target, tally: Tally, count: int) -> list[Subscriber]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> Subscriber:
        async with gate:
            _, protocol = await loop.create_connection(
                lambda: Subscriber(target.request, tally), HOST, target.port
            )
            await asyncio.wait_for(protocol.ready, DEADLINE)
            return protocol

    subscribers = await asyncio.gather(*(one() for _ in range(count)))
    await poll(lambda: _count_is(target, count), f"{count} subscribers", target.server)
    return subscribers


async def _count_is(target: Target, count: int) -> bool:
    return await target.subscriber_count() == count


async def unsubscribe(target: Target, subscribers: list[Subscriber]) -> float:
    """Close every stream; return the seconds until the server has let all of them go."""
    start = time.monotonic()
    for subscriber in subscribers:
        subscriber.close()
    await asyncio.gather(*(s.gone for s in subscribers))
    await poll(lambda: _count_is(target, 0), "the server to drop its subscribers", target.server)
    return time.monotonic() - start


async def publish_for(target: Target, rate: float, seconds: float) -> int:
    """Publish ``rate`` events/s for ``seconds`` s on a fixed schedule; return how many."""
    loop = asyncio.get_running_loop()
    total = max(1, round(rate * seconds))
    start = loop.time()
    tasks = []
    for n in range(total):
        # Sleeping here paces the load; it synchronises nothing.
        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
        # A task per event keeps the schedule even when one POST is slow.
        tasks.append(asyncio.create_task(target.publish(n)))
    await asyncio.gather(*tasks)
    return total


async def measure(target: Target, args: argparse.Namespace) -> Run:
    run = Run(server=target.kind)
    tally = Tally()
    server = target.server

    # Warm-up: code paths, lazy imports and first allocations happen before any reading.
    warm = await subscribe(target, tally, min(10, args.subscribers))
    for n in range(3):
        await target.publish(10_000 + n)
    await poll(lambda: _holds(len(tally.at) >= 3), "the warm-up events", server)
    await unsubscribe(target, warm)
    tally.at.clear()

    run.rss_idle0_kib = server.rss_kib()
    subscribers = await subscribe(target, tally, args.subscribers)
    run.subscribers = len(subscribers)
    run.rss_idle_kib = server.rss_kib()

    # The client's collector stays off while it times deliveries: what it allocates meanwhile
    # is freed by reference counting, and a collection pause here would be charged to the server.
    gc.collect()
    gc.disable()
    tally.recording = True
    cpu_server, cpu_client, cpu_all = server.cpu_seconds(), _own_cpu(), machine_cpu_seconds()
    wall = time.monotonic()
    run.published = await publish_for(target, args.rate, args.seconds)
    expected = run.subscribers * run.published
    await poll(
        lambda: _holds(len(tally.ids) >= expected),
        "every subscriber to receive every event",
        server,
    )
    wall = time.monotonic() - wall
    gc.enable()
    run.server_cpu = (server.cpu_seconds() - cpu_server) / wall
    run.client_cpu = (_own_cpu() - cpu_client) / wall
    run.other_cpu = max(
        0.0, (machine_cpu_seconds() - cpu_all) / wall - run.server_cpu - run.client_cpu
    )
    tally.recording = False

    run.delivered = len(tally.ids)
    run.latencies_ms = sorted(
        (t - tally.at[i]) * 1000 for i, t in zip(tally.ids, tally.times, strict=True)
    )
    run.release_s = await unsubscribe(target, subscribers)
    return run


async def _holds(value: bool) -> bool:
    return value


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def launch(kind: str, tmp: Path) -> Iterator[Server]:
    port = free_port()
    log = tmp / f"{kind}.out"
    if kind == "storykit":
        env = storykit_env(tmp / "storykit.jsonl")
        argv = storykit_argv(port, tmp / "storykit-data")
        with start_server(kind, argv, port=port, log=log, env=env) as server:
            yield server
    else:
        argv = [PYTHON, str(Path(__file__).with_name("_sse_peer.py")), "--port", str(port)]
        with start_server(kind, argv, port=port, log=log) as server:
            yield server


async def bench(kind: str, args: argparse.Namespace, tmp: Path) -> Run:
    with launch(kind, tmp) as server:
        if args.pin:
            server.pin({0})
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(timeout=DEADLINE, limits=limits) as client:
            return await measure(Target(kind, server, client), args)


def report(runs: list[Run], args: argparse.Namespace) -> None:
    print(
        f"{args.subscribers} subscribers, {args.rate:g} events/s for {args.seconds:g} s, "
        f"one server process each" + ("; server on CPU 0, client on CPU 1" if args.pin else "")
    )
    rows: list[tuple[str, Callable[[Run], str]]] = [
        ("subscribers connected", lambda r: f"{r.subscribers:,}"),
        (
            "events delivered / expected",
            lambda r: f"{r.delivered:,}/{r.subscribers * r.published:,}",
        ),
        ("latency p50 (ms)", lambda r: f"{percentile(r.latencies_ms, 50):.1f}"),
        ("latency p99 (ms)", lambda r: f"{percentile(r.latencies_ms, 99):.1f}"),
        ("latency max (ms)", lambda r: f"{r.latencies_ms[-1] if r.latencies_ms else 0:.1f}"),
        ("server RSS, no subscriber (MiB)", lambda r: f"{r.rss_idle0_kib / 1024:.1f}"),
        ("server RSS, all idle (MiB)", lambda r: f"{r.rss_idle_kib / 1024:.1f}"),
        ("RSS per idle subscriber (KiB)", lambda r: f"{r.kib_per_subscriber:.1f}"),
        ("server CPU while publishing", lambda r: f"{r.server_cpu:.0%}"),
        ("client CPU while publishing", lambda r: f"{r.client_cpu:.0%}"),
        ("other processes' CPU meanwhile", lambda r: f"{r.other_cpu:.0%}"),
        ("all streams released after (s)", lambda r: f"{r.release_s:.2f}"),
    ]
    print(f"{'':34}" + "".join(f"{LABELS[r.server]:>26}" for r in runs))
    for name, cell in rows:
        print(f"{name:34}" + "".join(f"{cell(r):>26}" for r in runs))
    by_server = {r.server: r for r in runs}
    ours, peer = by_server.get("storykit"), by_server.get("peer")
    if ours is not None and peer is not None:
        # Against the peer measured in this same run, never against older figures.
        for name, value in (
            ("latency p50", lambda r: percentile(r.latencies_ms, 50)),
            ("latency p99", lambda r: percentile(r.latencies_ms, 99)),
            ("RSS per idle subscriber", lambda r: r.kib_per_subscriber),
            ("server CPU while publishing", lambda r: r.server_cpu),
        ):
            base = value(peer)
            ratio = value(ours) / base if base else float("nan")
            print(f"storykit / peer, {name}: {ratio:.2f}x (lower is better)")
    if ours is not None:
        p99 = percentile(ours.latencies_ms, 99)
        kib = ours.kib_per_subscriber
        latency_ok = "met" if p99 < GOAL_P99_MS else "NOT met"
        memory_ok = "met" if kib <= GOAL_KIB_PER_SUBSCRIBER else "NOT met"
        beaten = ""
        if peer is not None:
            peer_p99 = percentile(peer.latencies_ms, 99)
            beaten = f"; p99 below the peer's {'met' if p99 < peer_p99 else 'NOT met'}"
            beaten += f" ({p99:.1f} vs {peer_p99:.1f})"
        print(
            f"goals for storykit: p99 < {GOAL_P99_MS:g} ms {latency_ok} ({p99:.1f}); "
            f"<= {GOAL_KIB_PER_SUBSCRIBER:g} KiB per idle subscriber {memory_ok} ({kib:.1f})"
            + beaten
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to publish")
    parser.add_argument("--rate", type=float, default=10.0, help="events published per second")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma separated")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--short", action="store_true", help="20 subscribers, 1 s each: does it still run"
    )
    args = parser.parse_args()
    if args.short:
        args.subscribers, args.seconds = 20, 1.0
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    if set(kinds) - set(SERVERS):
        parser.error(f"--servers: choose from {', '.join(SERVERS)}")
    args.pin = args.pin and len(os.sched_getaffinity(0)) >= 2
    # Each subscriber is a socket here and one in the server (which inherits the limit).
    limit = raise_open_files(2 * args.subscribers + 256)
    if limit < args.subscribers + 64:
        sys.exit(f"RLIMIT_NOFILE is {limit}: too low for {args.subscribers} subscribers")

    runs = []
    with tempfile.TemporaryDirectory(prefix="storykit-bench-sse-") as tmp_name:
        for kind in kinds:
            if args.pin:
                os.sched_setaffinity(0, {1})  # after the server starts it is moved to CPU 0
            print(f"  {LABELS[kind]} ...", file=sys.stderr)
            runs.append(asyncio.run(bench(kind, args, Path(tmp_name))))
    report(runs, args)


if __name__ == "__main__":
    main()
