"""How fast the event log appends: SqliteStore.write under concurrency vs raw sqlite3.

    python bench/bench_store.py --events 20000 --tasks 100

Each ``SqliteStore.write`` line runs ``--tasks`` tasks that together append
``--events`` events, one ``write`` call each, so group commit decides how many
transactions that takes. The baseline inserts the same rows (JSON encoding
included) with one ``executemany`` in one transaction, on the same table with the
same pragmas: the ceiling for SQLite from Python on this machine.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio

try:
    import storykit  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storykit.models import utcnow
from storykit.store._schema import MIGRATIONS, PRAGMAS
from storykit.store.sqlite import SqliteStore

EVENTS_TABLE = next(sql for sql in MIGRATIONS[0] if "CREATE TABLE events" in sql)


def payload(n: int) -> dict[str, object]:
    return {"id": f"sug_{n:026d}", "status": "pending", "by": "bench"}


def raw_executemany(path: Path, events: int) -> tuple[float, int]:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    conn.execute(EVENTS_TABLE)

    def rows() -> Iterator[tuple[str, str, str]]:
        at = utcnow().isoformat()
        for n in range(events):
            yield ("bench.event", at, json.dumps(payload(n), separators=(",", ":")))

    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO events (type, at, data) VALUES (?, ?, ?)", rows())
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    [(count,)] = conn.execute("SELECT COUNT(*) FROM events").fetchall()
    conn.close()
    assert count == events
    return elapsed, 1


async def store_writes(path: Path, events: int, tasks: int) -> tuple[float, int]:
    async with SqliteStore(path) as store:
        per_task, extra = divmod(events, tasks)

        async def appender(k: int) -> None:
            for i in range(per_task + (k < extra)):
                await store.write("bench.event", payload(k * (per_task + 1) + i))

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for k in range(tasks):
                tg.start_soon(appender, k)
        elapsed = time.perf_counter() - start
        assert await store.last_event_id() == events
        return elapsed, store.transactions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--backends", default="asyncio,trio")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="storykit-bench-") as tmp:
        results = [("raw sqlite3 executemany", *raw_executemany(Path(tmp, "raw.db"), args.events))]
        for backend in args.backends.split(","):
            elapsed, transactions = anyio.run(
                store_writes, Path(tmp, f"{backend}.db"), args.events, args.tasks, backend=backend
            )
            results.append((f"SqliteStore.write ({backend})", elapsed, transactions))

    raw_rate = args.events / results[0][1]
    print(
        f"{args.events} events, {args.tasks} concurrent appenders, SQLite {sqlite3.sqlite_version}"
    )
    print(f"{'':30} {'events/s':>10} {'vs raw':>7} {'transactions':>13}")
    for name, elapsed, transactions in results:
        rate = args.events / elapsed
        print(f"{name:30} {rate:>10,.0f} {rate / raw_rate:>6.2f}x {transactions:>13,}")


if __name__ == "__main__":
    main()
