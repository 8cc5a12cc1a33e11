"""Replicas on one PostgreSQL database: a commit on one wakes the others' event buses
(LISTEN/NOTIFY), so their subscribers get it without waiting for the poll; and a
replica that loses the database recovers by itself."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from test_store import until

from storykit.errors import Unavailable
from storykit.events import EventBus, Subscription
from storykit.models import Event
from storykit.store._pg_driver import LISTEN_APPLICATION
from storykit.store.postgres import PostgresStore

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def replica(url: str) -> AsyncIterator[tuple[PostgresStore, EventBus]]:
    """A store and a bus that never polls: only a notification can wake it."""
    async with PostgresStore(url) as store, EventBus(store, poll_interval=None) as bus:
        store.watch(bus.nudge)
        yield store, bus


def listeners(conn: psycopg.Connection[Any]) -> list[int]:
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = %s",
        (LISTEN_APPLICATION,),
    ).fetchall()
    return [int(pid) for (pid,) in rows]


async def next_event(sub: Subscription) -> Event:
    with anyio.fail_after(10):
        async for item in sub:
            assert isinstance(item, Event)
            return item
    raise AssertionError("the subscription ended")


async def test_a_write_on_one_replica_wakes_the_other(pg_url: str) -> None:
    async with replica(pg_url) as (a, _), replica(pg_url) as (_, bus_b):
        with psycopg.connect(pg_url, autocommit=True) as admin:
            await until(lambda: len(listeners(admin)) == 2)
        async with bus_b.subscribe() as sub:
            event = await a.write("first", {"n": 1})  # published on no bus at all
            assert await next_event(sub) == event
            event = await a.write("second", {"n": 2})
            assert await next_event(sub) == event


async def test_the_listen_connection_is_re_established(pg_url: str) -> None:
    async with replica(pg_url) as (a, _), replica(pg_url) as (_, bus_b):
        with psycopg.connect(pg_url, autocommit=True) as admin:
            await until(lambda: len(listeners(admin)) == 2)
            before = set(listeners(admin))
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                (LISTEN_APPLICATION,),
            )
            async with bus_b.subscribe() as sub:
                event = await a.write("after", {})  # maybe before b listens again: the log has it
                assert await next_event(sub) == event
                # Both replicas listen again, on new connections.
                await until(lambda: len(set(listeners(admin)) - before) == 2)
                event = await a.write("later", {})
                assert await next_event(sub) == event


@contextlib.contextmanager
def database_unavailable(url: str) -> Any:
    """Refuse new connections to the test database and end the open ones (the server stays up)."""
    info = conninfo_to_dict(url)
    name = str(info["dbname"])
    admin_url = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            yield
        finally:
            admin.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name))
            )


async def test_a_replica_recovers_when_the_database_is_back(pg_url: str) -> None:
    async with replica(pg_url) as (a, _), replica(pg_url) as (b, bus_b):
        async with bus_b.subscribe() as sub:
            with database_unavailable(pg_url):
                assert not await b.ping()
                with pytest.raises(Unavailable, match="database is unavailable"):
                    await a.write("refused", {})
                with pytest.raises(Unavailable, match="database is unavailable"):
                    await a.read_events()
            # Back: writes work again, and b's listener reconnects and delivers.
            with anyio.fail_after(30):
                while True:
                    try:
                        event = await a.write("back", {})
                        break
                    except Unavailable:
                        await anyio.sleep(0.1)  # a bounded retry until the pool reconnects
            assert await next_event(sub) == event
            assert await b.ping()
