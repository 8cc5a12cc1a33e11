"""Fan-out across replicas: a write on one replica to its receipt on the others' SSE streams.

    python bench/bench_fanout.py --database-url postgresql://postgres@127.0.0.1/postgres
    python bench/bench_fanout.py --database-url … --quick        # a quick look

Three ``storykit serve`` replicas on one fresh PostgreSQL database (created in the
server ``--database-url`` points at, dropped afterwards). ``--subscribers`` SSE
streams are spread over replicas 2 and 3; one writer submits suggestions on replica
1 at ``--rate`` per second. Each receipt is timed against the moment its write was
sent, so a figure is the whole path: HTTP request, group commit with NOTIFY, the
other replica's listener waking its bus, the log read, the SSE frame, the client.

The baseline, measured in the same run on the same database: the same subscribers all
on replica 1, the writer's own (the event reaches them in-process, no NOTIFY).
Subscribers are raw HTTP/1.0 streams on one asyncio loop in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import (
    AGENT_KEY,
    HOST,
    Server,
    free_port,
    raise_open_files,
    start_server,
    storykit_argv,
    storykit_env,
)


@dataclass
class Tally:
    sent: dict[int, float] = field(default_factory=dict)  # event id -> when its write was sent
    received: list[tuple[int, float]] = field(default_factory=list)  # (event id, when)

    def latencies_ms(self) -> list[float]:
        return sorted((at - self.sent[i]) * 1000 for i, at in self.received if i in self.sent)


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def subscriber(port: int, tally: Tally, ready: asyncio.Event, stop: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        f"GET /events HTTP/1.0\r\nHost: {HOST}\r\nX-API-Key: {AGENT_KEY}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"subscribe failed: {status!r}")
    ready.set()
    try:
        while not stop.is_set():
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"id: "):
                tally.received.append((int(line[4:]), time.perf_counter()))
    finally:
        writer.close()


async def connections(server: Server) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{server.url}/metrics")).text
    for line in text.splitlines():
        if line.startswith("storykit_sse_connections "):
            return float(line.split()[1])
    return 0.0


async def run_case(
    writer_on: Server, subscribe_on: list[Server], args: argparse.Namespace
) -> list[float]:
    tally = Tally()
    stop = asyncio.Event()
    tasks = []
    for n in range(args.subscribers):
        target = subscribe_on[n % len(subscribe_on)]
        ready = asyncio.Event()
        tasks.append(
            asyncio.create_task(subscriber(int(target.url.rsplit(":", 1)[1]), tally, ready, stop))
        )
    deadline = time.monotonic() + 60
    while sum([await connections(s) for s in set(subscribe_on)]) < args.subscribers:
        if time.monotonic() > deadline:
            raise TimeoutError("subscribers did not all register")
        await asyncio.sleep(0.1)
    headers = {"X-API-Key": AGENT_KEY}
    count = int(args.rate * args.seconds)
    async with httpx.AsyncClient(timeout=10) as client:
        start = time.perf_counter()
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n / args.rate - time.perf_counter()))  # pacing
            name = f"f{secrets.token_hex(4)}.py"
            diff = (
                f"diff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n"
                "@@ -1 +1 @@\n-a = 1\n+a = 2\n"
            )
            sent = time.perf_counter()
            r = await client.post(
                f"{writer_on.url}/suggestions", headers=headers, json={"title": "t", "diff": diff}
            )
            r.raise_for_status()
            log = (
                await client.get(
                    f"{writer_on.url}/events/log",
                    headers=headers,
                    params={"after": max(tally.sent, default=0), "limit": 1000},
                )
            ).json()
            for item in log["items"]:
                tally.sent.setdefault(int(item["id"]), sent)
    expected = count * args.subscribers
    deadline = time.monotonic() + 30
    while len(tally.received) < expected and time.monotonic() < deadline:  # noqa: ASYNC110 (bounded)
        await asyncio.sleep(0.1)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if len(tally.received) < expected:
        print(f"  warning: {len(tally.received)} of {expected} receipts arrived")
    return tally.latencies_ms()


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"storykit_bench_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = conninfo_to_dict(admin_url)
    user, host = info.get("user", "postgres"), info.get("host", "127.0.0.1")
    try:
        yield f"postgresql://{user}@{host}:{info.get('port', 5432)}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server (admin); default $BENCH_DATABASE_URL or the local one",
    )
    parser.add_argument("--subscribers", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="writes per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="60 subscribers, 5 seconds")
    parser.add_argument(
        "--short", action="store_true", help="10 subscribers, 2 seconds: does it still run"
    )
    args = parser.parse_args()
    if args.quick:
        args.subscribers, args.seconds = 60, 5.0
    if args.short:
        args.subscribers, args.seconds = 10, 2.0
    raise_open_files(args.subscribers * 2 + 256)
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.database_url) as url:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q", str(root / "repo")], check=True)
        env = storykit_env(None, DATABASE_URL=url, REPO_PATH=str(root / "repo"))
        with contextlib.ExitStack() as stack:
            team = []
            for i in (1, 2, 3):
                port = free_port()
                team.append(
                    stack.enter_context(
                        start_server(
                            f"replica {i}",
                            storykit_argv(port, root / f"data{i}"),
                            port=port,
                            log=root / f"r{i}.log",
                            env=env,
                        )
                    )
                )
            cases = [
                ("baseline: writer's own replica", team[0], [team[0]]),
                ("3 replicas: subscribers on replicas 2 and 3", team[0], [team[1], team[2]]),
            ]
            print(
                f"{args.subscribers} subscribers, {args.rate:g} writes/s for {args.seconds:g} s,"
                " write sent -> event received (ms)"
            )
            print(f"{'case':48} {'receipts':>9} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
            p99s = []
            for label, writer_on, subscribe_on in cases:
                ms = asyncio.run(run_case(writer_on, subscribe_on, args))
                p99s.append(percentile(ms, 99))
                print(
                    f"{label:48} {len(ms):>9} {percentile(ms, 50):>7.1f} {percentile(ms, 90):>7.1f}"
                    f" {percentile(ms, 99):>7.1f} {max(ms, default=float('nan')):>7.1f}"
                )
            # Against the baseline measured in this same run.
            print(f"3 replicas / baseline, p99: {p99s[1] / p99s[0]:.2f}x (lower is better)")


if __name__ == "__main__":
    main()
