"""What replicas share besides the event log (issue 11 point 7): an agent's rate limit
(in the database or in Redis), SSE tickets, and observer progress. Three real
replicas on one PostgreSQL database, behind HAProxy."""

from __future__ import annotations

import collections
import secrets
from pathlib import Path

import httpx
import psycopg
import pytest
from team import (
    HEADERS,
    Replica,
    all_ids,
    load_balancer,
    redis_call,
    replicas,
    sample_diff,
)

from storykit.ratelimit import REDIS_PREFIX
from storykit.testing import wait_until

pytestmark = pytest.mark.slow

THREE = ["asyncio", "asyncio", "trio"]
OBSERVER_PLUGIN = Path(__file__).parent / "observer_plugin"


def _spend_budget(team: list[Replica], url: str, key: str, requests: int) -> list[httpx.Response]:
    """``requests`` requests by one agent: round robin straight to each replica, and
    every fourth through the balancer."""
    targets = [r.url for r in team]
    answers = []
    with httpx.Client(timeout=10, headers={"X-API-Key": key}) as http:
        for n in range(requests):
            base = url if n % 4 == 3 else targets[n % len(targets)]
            answers.append(http.get(f"{base}/suggestions"))
    return answers


def _assert_five_in_total(answers: list[httpx.Response]) -> None:
    allowed = [r for r in answers if r.status_code != 429]
    refused = [r for r in answers if r.status_code == 429]
    assert [r.status_code for r in allowed] == [200] * 5, [r.status_code for r in answers]
    assert len(refused) == len(answers) - 5
    for r in refused:
        assert int(r.headers["Retry-After"]) >= 1
        assert r.headers["content-type"] == "application/problem+json"
    # The budget was spent on more than one replica, and refused on every one.
    assert len({str(r.url.port) for r in allowed}) >= 2
    assert {str(r.url.port) for r in refused} >= {str(r.url.port) for r in answers[:3]}


def _limited_team_env(name: str, key: str, **extra: str) -> dict[str, str]:
    # 0.01 r/s: one request back every 100 s, nothing during the test; a burst of 5.
    return {
        "API_TOKENS": f"{name}:agent={key}",
        "RATE_LIMIT_RPS": "0.01",
        "RATE_LIMIT_BURST": "5",
    } | extra


def test_an_agent_gets_its_budget_once_across_replicas_in_the_database(
    tmp_path: Path, database_url: str, haproxy: str
) -> None:
    name, key = f"bot{secrets.token_hex(4)}", secrets.token_hex(16)
    env = _limited_team_env(name, key)
    with (
        replicas(tmp_path, database_url, THREE, **env) as team,
        load_balancer(haproxy, tmp_path, team) as url,
    ):
        answers = _spend_budget(team, url, key, 30)
    _assert_five_in_total(answers)
    with psycopg.connect(database_url) as db:  # the database limiter kept it, not Redis
        rows = db.execute("SELECT key FROM rate_limits").fetchall()
    assert rows == [(name,)]


def test_an_agent_gets_its_budget_once_across_replicas_in_redis(
    tmp_path: Path, database_url: str, haproxy: str, redis_url: str
) -> None:
    # A name of its own: parallel runs on one Redis never share a bucket.
    name, key = f"bot{secrets.token_hex(4)}", secrets.token_hex(16)
    bucket = REDIS_PREFIX + name
    env = _limited_team_env(name, key, REDIS_URL=redis_url)
    try:
        with (
            replicas(tmp_path, database_url, THREE, **env) as team,
            load_balancer(haproxy, tmp_path, team) as url,
        ):
            answers = _spend_budget(team, url, key, 30)
        _assert_five_in_total(answers)
        assert redis_call(redis_url, "exists", [bucket]) == 1  # Redis kept it
        with psycopg.connect(database_url) as db:  # and not the database
            assert db.execute("SELECT count(*) FROM rate_limits").fetchone() == (0,)
    finally:
        redis_call(redis_url, "delete", [bucket])


def test_a_ticket_made_on_one_replica_opens_a_stream_once_on_another(
    tmp_path: Path, database_url: str
) -> None:
    with replicas(tmp_path, database_url, THREE) as (r1, r2, r3):
        made = httpx.post(f"{r1.url}/events/ticket", headers=HEADERS, timeout=10)
        assert made.status_code == 200, made.text
        ticket = made.json()["ticket"]
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=30)) as http,
            http.stream("GET", f"{r2.url}/events", params={"ticket": ticket}) as opened,
        ):
            assert opened.status_code == 200
            assert opened.headers["content-type"].startswith("text/event-stream")
            first = next(line for line in opened.iter_lines() if line.startswith("event:"))
            assert first == "event: ready"
        # A second use, on a third replica and on the one that opened it: refused.
        # (Streamed, so a wrongly opened stream fails the test instead of hanging it.)
        for replica in (r3, r2):
            with httpx.stream(
                "GET", f"{replica.url}/events", params={"ticket": ticket}, timeout=10
            ) as again:
                assert again.status_code == 401, replica.name
                again.read()
                assert "the ticket is unknown, used or expired" in again.json()["detail"]


def test_an_observer_fires_once_per_event_across_replicas(
    tmp_path: Path, database_url: str, haproxy: str
) -> None:
    seen_file = tmp_path / "observed.txt"
    env = {
        "PYTHONPATH": str(OBSERVER_PLUGIN),
        "STORYKIT_LOAD_PLUGINS": "team-observer",
        "STORYKIT_TEAM_OBSERVER_FILE": str(seen_file),
    }

    def observed() -> collections.Counter[int]:
        if not seen_file.exists():
            return collections.Counter()
        lines = seen_file.read_text().splitlines()
        return collections.Counter(int(line.split()[0]) for line in lines)

    with (
        replicas(tmp_path, database_url, THREE, **env) as team,
        load_balancer(haproxy, tmp_path, team) as url,
        httpx.Client(timeout=10, headers=HEADERS) as http,
    ):
        served = set()
        for n in range(30):
            body = {"title": f"n{n}", "diff": sample_diff(n)}
            made = http.post(f"{url}/suggestions", json=body)
            assert made.status_code == 201, made.text
            served.add(made.headers["X-Replica"])
        assert served == {"r1", "r2", "r3"}  # events written on every replica
        log = all_ids(url)
        assert len(log) >= 30
        wait_until(lambda: set(log) <= set(observed()), what="the observer to see every event")
        # One more event, seen last (an observer gets its events in order): any second
        # delivery of the earlier ones by another replica has had its chance.
        last = http.post(f"{url}/suggestions", json={"title": "last", "diff": sample_diff(99)})
        assert last.status_code == 201, last.text
        log = all_ids(url)
        wait_until(lambda: log[-1] in observed(), what="the observer to see the last event")
        counts = observed()

    assert sorted(counts) == log  # every event, nothing else
    assert [i for i, n in counts.items() if n != 1] == []  # each exactly once
