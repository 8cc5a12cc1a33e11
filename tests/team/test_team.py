"""Three ``storykit serve`` replicas on one PostgreSQL database behind a real HAProxy.

SSE clients reconnect through the balancer (landing on other replicas), writers go
through it too (spreading over every replica), one replica is killed with ``kill -9``
mid-stream; every client must end with every event of the log exactly once, in order.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql
from team import (
    ADMIN_URL,
    HEADERS,
    StreamClient,
    all_ids,
    database_name,
    load_balancer,
    replicas,
    sample_diff,
    status,
)

from storykit.testing import wait_until

pytestmark = pytest.mark.slow

WRITERS, WRITES_EACH, CLIENTS = 3, 80, 6


def test_every_client_gets_every_event_once_in_order_across_replicas(
    tmp_path: Path, database_url: str, haproxy: str
) -> None:
    # Both event loops: the third replica runs on trio (the store's thread driver).
    with (
        replicas(tmp_path, database_url, ["asyncio", "asyncio", "trio"]) as team,
        load_balancer(haproxy, tmp_path, team) as url,
    ):
        clients = [StreamClient(url, reconnect_every=25 + 7 * i) for i in range(CLIENTS)]
        for client in clients:
            client.start()
        wait_until(lambda: all(c.landed for c in clients), what="every client to connect")

        served: list[str] = []
        written = threading.Semaphore(0)

        def writer(w: int) -> None:
            with httpx.Client(timeout=10) as http:
                for n in range(WRITES_EACH):
                    body = {"title": f"w{w} n{n}", "diff": sample_diff(w * 1000 + n)}
                    while True:  # the replica behind may have just died: try again
                        try:
                            r = http.post(f"{url}/suggestions", headers=HEADERS, json=body)
                        except httpx.TransportError:
                            continue
                        if r.status_code == 201:
                            break
                        assert r.status_code in (502, 503), r.text
                    served.append(r.headers.get("X-Replica", "?"))
                    written.release()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        for _ in range(WRITERS * WRITES_EACH // 3):
            written.acquire(timeout=60)
        victim = team[1]
        victim.kill()  # mid-stream: clients on it lose their connection, writes retry
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads)

        log = all_ids(url)
        assert len(log) >= WRITERS * WRITES_EACH
        assert log == list(range(1, len(log) + 1))
        try:
            wait_until(
                lambda: all(len(c.ids) >= len(log) for c in clients),
                what="every client to catch up",
                deadline=60,
            )
        finally:
            for client in clients:
                client.stop()

    for client in clients:
        assert client.ids == log  # every event, exactly once, in order
    assert {name for name in served} == {"r1", "r2", "r3"}  # writes reached every replica
    # Reconnects landed on every replica, and no client ends on the killed one. (Which
    # replica one client reaches is the balancer's round robin, shared by all clients:
    # one client may keep landing on the same one.)
    landed = [c.landed for c in clients]
    assert {name for names in landed for name in names} == {"r1", "r2", "r3"}, landed
    assert any("r2" in names for names in landed), landed
    assert all(names[-1] != "r2" for names in landed), landed  # none stays on the dead one


def test_a_replica_that_loses_the_database_says_so_and_recovers(
    tmp_path: Path, database_url: str
) -> None:
    name = database_name(database_url)
    with replicas(tmp_path, database_url, ["asyncio", "trio"]) as (a, b):
        heartbeats = threading.Event()
        seen: list[int] = []
        done = threading.Event()

        def stream() -> None:  # one SSE stream on b, open across the outage
            headers = HEADERS | {"Last-Event-ID": "0"}
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=30)) as http,
                http.stream("GET", f"{b.url}/events", headers=headers) as response,
            ):
                for line in response.iter_lines():
                    if line.startswith(":") and down.is_set():
                        heartbeats.set()
                    if line.startswith("id:"):
                        seen.append(int(line[3:].strip()))
                    if done.is_set():
                        return

        down = threading.Event()
        reader = threading.Thread(target=stream, daemon=True)
        reader.start()
        ok = httpx.post(
            f"{a.url}/suggestions", headers=HEADERS, json={"title": "t", "diff": sample_diff(1)}
        )
        assert ok.status_code == 201
        wait_until(lambda: seen == [1], what="the first event on b's stream")

        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            ident = sql.Identifier(name)
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident))
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            down.set()
            for replica in (a, b):
                health = httpx.get(f"{replica.url}/health", timeout=10)
                assert health.status_code == 503
                assert health.json()["database"] == "unavailable"
            refused = httpx.post(
                f"{a.url}/suggestions",
                headers=HEADERS,
                json={"title": "t", "diff": sample_diff(2)},
                timeout=30,
            )
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert "database is unavailable" in refused.json()["detail"]
            # The open stream stays open, heartbeating.
            wait_until(
                heartbeats.is_set, what="a heartbeat on b's stream while the database is down"
            )
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident))

        wait_until(
            lambda: status(f"{a.url}/health") == status(f"{b.url}/health") == 200,
            what="both replicas to recover",
        )
        ok = httpx.post(
            f"{a.url}/suggestions", headers=HEADERS, json={"title": "t", "diff": sample_diff(3)}
        )
        assert ok.status_code == 201, ok.text
        new_id = all_ids(a.url)[-1]
        wait_until(lambda: new_id in seen, what="the new event on b's stream after recovery")
        done.set()
        assert seen == all_ids(b.url)
