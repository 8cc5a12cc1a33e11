"""How fast the event log appends: Store.write under concurrency vs a raw executemany.

    python bench/bench_store.py --events 20000 --tasks 100
    python bench/bench_store.py --database-url postgresql://postgres@127.0.0.1/postgres

Each ``…Store.write`` line runs ``--tasks`` tasks that together append
``--events`` events, one ``write`` call each, so group commit decides how many
transactions that takes. The baseline inserts the same rows (JSON encoding
included) with one ``executemany`` in one transaction, on the same table (and,
for SQLite, the same pragmas): the ceiling for the database from Python on this
machine.

Without ``--database-url`` it measures SqliteStore on temporary files. With it,
PostgresStore: the URL names a server and a user allowed to create databases;
each measurement gets a throwaway database ``storykit_bench_<random>``, dropped
afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

try:
    import storykit  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storykit.models import utcnow
from storykit.store import _pg_schema
from storykit.store._schema import MIGRATIONS, PRAGMAS
from storykit.store.sqlite import SqliteStore

EVENTS_TABLE = next(sql for sql in MIGRATIONS[0] if "CREATE TABLE events" in sql)
PG_EVENTS_TABLE = next(sql for sql in _pg_schema.MIGRATIONS[0] if "CREATE TABLE events" in sql)


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


async def store_writes(store: Any, events: int, tasks: int) -> tuple[float, int]:
    async with store:
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


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A throwaway database on the server ``admin_url`` names; its conninfo."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"storykit_bench_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def raw_pg_executemany(conninfo: str, events: int) -> tuple[float, int]:
    import psycopg

    with psycopg.connect(conninfo) as conn:
        conn.execute(PG_EVENTS_TABLE)
        conn.commit()

        def rows() -> Iterator[tuple[int, str, str, str]]:
            at = utcnow().isoformat()
            for n in range(events):
                data = json.dumps(payload(n), separators=(",", ":"))
                yield (n + 1, "bench.event", at, data)

        start = time.perf_counter()
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO events (id, type, at, data) VALUES (%s, %s, %s, %s)", rows()
            )
        conn.commit()
        elapsed = time.perf_counter() - start
        [(count,)] = conn.execute("SELECT COUNT(*) FROM events").fetchall()
    assert count == events
    return elapsed, 1


def measure_sqlite(args: argparse.Namespace) -> tuple[str, list[tuple[str, float, int]]]:
    with tempfile.TemporaryDirectory(prefix="storykit-bench-") as tmp:
        results = [("raw sqlite3 executemany", *raw_executemany(Path(tmp, "raw.db"), args.events))]
        for backend in args.backends.split(","):
            store = SqliteStore(Path(tmp, f"{backend}.db"))
            elapsed, transactions = anyio.run(
                store_writes, store, args.events, args.tasks, backend=backend
            )
            results.append((f"SqliteStore.write ({backend})", elapsed, transactions))
    return f"SQLite {sqlite3.sqlite_version}", results


def measure_postgres(args: argparse.Namespace) -> tuple[str, list[tuple[str, float, int]]]:
    import psycopg

    from storykit.store.postgres import PostgresStore

    with psycopg.connect(args.database_url) as conn:
        [(version,)] = conn.execute("SHOW server_version").fetchall()
    with scratch_database(args.database_url) as conninfo:
        results = [("raw psycopg executemany", *raw_pg_executemany(conninfo, args.events))]
    for backend in args.backends.split(","):
        with scratch_database(args.database_url) as conninfo:
            elapsed, transactions = anyio.run(
                store_writes, PostgresStore(conninfo), args.events, args.tasks, backend=backend
            )
        results.append((f"PostgresStore.write ({backend})", elapsed, transactions))
    return f"PostgreSQL {version}, psycopg {psycopg.__version__}", results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--backends", default="asyncio,trio")
    parser.add_argument(
        "--database-url",
        help="measure PostgresStore on this server (a user that may create databases)",
    )
    parser.add_argument("--short", action="store_true", help="2,000 events: does it still run")
    args = parser.parse_args()
    if args.short:
        args.events, args.tasks = 2_000, 20

    database, results = measure_postgres(args) if args.database_url else measure_sqlite(args)
    raw_rate = args.events / results[0][1]
    print(f"{args.events} events, {args.tasks} concurrent appenders, {database}")
    print(f"{'':32} {'events/s':>10} {'vs raw':>7} {'transactions':>13}")
    for name, elapsed, transactions in results:
        rate = args.events / elapsed
        print(f"{name:32} {rate:>10,.0f} {rate / raw_rate:>6.2f}x {transactions:>13,}")


if __name__ == "__main__":
    main()
