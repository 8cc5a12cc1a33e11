"""SPEC §8: nothing a request needs lives in one process (issue 11 point 4).

Two cores (or stores, or limiters) on one database stand for two processes or
replicas: SSE tickets made by one are redeemed once by the other, observers see
each event once in total, and rate limits are one budget. On SQLite and on
PostgreSQL (``db_env``), on asyncio and on trio.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from storykit.auth import Principal, Role
from storykit.hookspecs import hookimpl
from storykit.ratelimit import DatabaseRateLimiter, RateLimiter, RedisRateLimiter, open_limiter
from storykit.services import Storykit
from storykit.testing import AGENT, make_settings, open_core

pytestmark = pytest.mark.anyio

REDIS_URL = os.environ.get("STORYKIT_TEST_REDIS", "redis://127.0.0.1:6379/0")


# -- SSE tickets ----------------------------------------------------------------------


async def test_a_ticket_made_by_one_core_works_once_through_another(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    async with (
        open_core(tmp_path, env=db_env) as one,
        open_core(tmp_path, env=db_env, run_observers=False) as other,
    ):
        ticket = await one.store.issue_ticket(AGENT, 60)
        assert ticket.startswith("tk_")
        assert await other.store.redeem_ticket(ticket) == AGENT
        assert await other.store.redeem_ticket(ticket) is None  # used
        assert await one.store.redeem_ticket(ticket) is None  # used, on any replica
        assert await one.store.redeem_ticket("tk_never-issued") is None


async def test_expired_tickets_are_refused_and_purged(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    reviewer = Principal(name="alice", role=Role.REVIEWER)
    async with open_core(tmp_path, env=db_env) as core:
        expired = await core.store.issue_ticket(reviewer, -1)
        assert await core.store.redeem_ticket(expired) is None
        stale = await core.store.issue_ticket(reviewer, -1)
        await core.store.issue_ticket(reviewer, 60)  # purges the expired one
        assert await core.store.redeem_ticket(stale) is None
        live = await core.store.issue_ticket(reviewer, 60)
        assert await core.store.redeem_ticket(live) == reviewer


async def test_only_a_hash_of_a_ticket_is_stored(tmp_path: Path) -> None:
    import sqlite3

    async with open_core(tmp_path) as core:
        ticket = await core.store.issue_ticket(AGENT, 60)
        with contextlib.closing(sqlite3.connect(core.settings.db_path)) as db:
            rows = db.execute("SELECT * FROM sse_tickets").fetchall()
    assert len(rows) == 1 and ticket not in repr(rows) and ticket[3:] not in repr(rows)


# -- observers --------------------------------------------------------------------------


class Recorder:
    """An observer plugin; every copy (one per "process") records into one list."""

    def __init__(self, seen: list[tuple[str, int]], who: str, want: int) -> None:
        self.seen, self.who, self.want = seen, who, want
        self.done = anyio.Event()

    @hookimpl
    async def storykit_on_event(self, event: Any) -> None:
        if event.type.startswith("test."):
            self.seen.append((self.who, event.id))
        if len(self.seen) >= self.want:
            self.done.set()


async def _wait_all(*recorders: Recorder) -> None:
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for r in recorders:
                tg.start_soon(_first_done, r, tg)


async def _first_done(recorder: Recorder, tg: Any) -> None:
    await recorder.done.wait()
    tg.cancel_scope.cancel()


async def test_two_cores_on_one_database_observe_each_event_once(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    seen: list[tuple[str, int]] = []
    a, b = Recorder(seen, "a", 10), Recorder(seen, "b", 10)
    written: list[int] = []
    async with (
        open_core(tmp_path, env=db_env, plugins={"obs": a}) as one,
        open_core(tmp_path, env=db_env, plugins={"obs": b}) as other,
    ):
        for i in range(10):
            core = one if i % 2 else other
            written.append((await core.emit("test.event", {"i": i})).id)
        await _wait_all(a, b)
    ids = [event_id for _, event_id in seen]
    assert sorted(ids) == sorted(written)  # each exactly once, by one of the two
    assert ids == sorted(ids)  # and in order


async def test_a_cli_core_fires_no_observer_and_the_server_sees_its_events(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    server_seen: list[tuple[str, int]] = []
    cli_seen: list[tuple[str, int]] = []
    server = Recorder(server_seen, "server", 3)
    cli = Recorder(cli_seen, "cli", 1)
    async with open_core(tmp_path, env=db_env, plugins={"obs": server}) as _:
        async with open_core(
            tmp_path, env=db_env, plugins={"obs": cli}, run_observers=False
        ) as command:
            assert command.observers is None
            written = [(await command.emit("test.cli", {"i": i})).id for i in range(3)]
        with anyio.fail_after(20):  # written by another process: found by polling
            await server.done.wait()
    assert [event_id for _, event_id in server_seen] == written
    assert cli_seen == []


async def test_storykit_open_runs_no_observers_unless_asked(tmp_path: Path) -> None:
    async with Storykit.open(make_settings(tmp_path)) as core:
        assert core.observers is None


# -- rate limits -------------------------------------------------------------------------


async def _spend(limiters: list[Any], key: str, tries: int) -> int:
    allowed = 0
    for _ in range(tries):
        for limiter in limiters:
            allowed += (await limiter.check(key)).allowed
    return allowed


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_two_replicas_share_one_budget_in_postgresql(pg_url: str, tmp_path: Path) -> None:
    from storykit.store.postgres import PostgresStore

    # A slow rate: no request is refilled while the test runs, so only the burst counts.
    async with PostgresStore(pg_url) as one, PostgresStore(pg_url) as other:
        limiters = [DatabaseRateLimiter(one, 0.01, 4), DatabaseRateLimiter(other, 0.01, 4)]
        assert await _spend(limiters, "bot", 5) == 4  # not 8
        refused = await limiters[1].check("bot")
        assert not refused.allowed and refused.retry_after > 0 and refused.remaining == 0
        assert (await limiters[0].check("other-bot")).remaining == 3  # per agent


@contextlib.asynccontextmanager
async def _redis(prefix: str) -> AsyncIterator[Any]:
    import coredis

    client = coredis.Redis.from_url(REDIS_URL)
    try:
        async with client:
            await client.ping()
            yield client
    except (coredis.exceptions.ConnectionError, OSError) as exc:
        pytest.skip(f"Redis is unreachable at {REDIS_URL} ({exc}); set STORYKIT_TEST_REDIS")
    finally:
        with contextlib.suppress(Exception):
            async with coredis.Redis.from_url(REDIS_URL) as cleanup:
                keys = [k async for k in cleanup.scan_iter(match=prefix + "*")]
                if keys:
                    await cleanup.delete(keys)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_two_replicas_share_one_budget_in_redis() -> None:
    prefix = f"storykit-test:{secrets.token_hex(6)}:"
    async with _redis(prefix) as one, _redis(prefix) as other:
        limiters = [
            RedisRateLimiter(one, 0.01, 4, prefix=prefix),
            RedisRateLimiter(other, 0.01, 4, prefix=prefix),
        ]
        assert await _spend(limiters, "bot", 5) == 4  # not 8
        refused = await limiters[0].check("bot")
        assert not refused.allowed and refused.retry_after > 0
        assert (await limiters[1].check("other-bot")).remaining == 3


async def test_open_limiter_chooses_redis_then_the_database_then_this_process(
    tmp_path: Path, db_env: dict[str, str]
) -> None:
    settings = make_settings(tmp_path, db_env)
    async with open_core(tmp_path, env=db_env, run_observers=False) as core:
        async with open_limiter(settings, core.store) as limiter:
            expected = DatabaseRateLimiter if db_env else RateLimiter
            assert type(limiter) is expected
            assert (await limiter.check("bot")).allowed
        redis = make_settings(tmp_path, db_env | {"REDIS_URL": REDIS_URL})
        async with open_limiter(redis, core.store) as limiter:
            assert type(limiter) is RedisRateLimiter
