"""What only the PostgreSQL store has: ids in commit order across replicas, migrations
that replicas starting at once apply once, its drivers; and how DATABASE_URL chooses
it. The rest of the store suite (test_store.py) runs on it too."""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from test_store import PostgresBackend, make_suggestion, queue_in_order, until

from storykit.errors import BackendError, Invalid, NotFound
from storykit.filters import SuggestionFilter
from storykit.models import Suggestion, utcnow
from storykit.settings import Settings, SettingsError
from storykit.store import _pg_schema, open_store
from storykit.store._pg_schema import LOCK_KEY, SCHEMA_VERSION
from storykit.store.postgres import PostgresStore
from storykit.store.sqlite import SqliteStore
from storykit.testing import make_settings, open_core

pytestmark = pytest.mark.anyio

GATE = 4242  # an advisory lock the test holds to stop a writer mid-transaction


def lock_waits(conn: psycopg.Connection[Any]) -> list[str]:
    """What the other sessions on this database are waiting for, lock by lock."""
    rows = conn.execute(
        "SELECT wait_event FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND pid <> pg_backend_pid()"
    ).fetchall()
    return sorted(str(event) for (event,) in rows)


async def test_driver_matches_the_event_loop(pg_url: str, anyio_backend: str) -> None:
    # psycopg's async pool on asyncio; on trio, sync connections in worker threads.
    expected = "_AsyncPool" if anyio_backend == "asyncio" else "_ThreadPool"
    async with PostgresStore(pg_url) as store:
        assert type(store._pool).__name__ == expected


async def test_a_reader_never_skips_an_id_that_commits_late(pg_url: str) -> None:
    """Two replicas write; the one that takes an id first commits last.

    ``first`` takes the next id and is then held inside its transaction (a trigger
    waits on an advisory lock the test holds). ``second`` writes meanwhile. Had its
    id come from a sequence, it would take the id after and commit at once, and a
    reader polling ``read_events(after=cursor)`` would move its cursor past the id
    still to come, skipping it forever. With the counter row locked per
    transaction, ``second`` waits for ``first``, and the reader sees every id.
    """
    async with (
        PostgresStore(pg_url) as first,
        PostgresStore(pg_url) as second,
        PostgresStore(pg_url) as reader,
    ):
        seen: list[int] = []
        cursor = 0

        async def poll() -> None:
            nonlocal cursor
            for event in await reader.read_events(after=cursor):
                seen.append(event.id)
                cursor = event.id

        with psycopg.connect(pg_url, autocommit=True) as gate:
            gate.execute(
                "CREATE FUNCTION wait_at_gate() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN PERFORM pg_advisory_xact_lock_shared({GATE}); RETURN NEW; END $$"
            )
            gate.execute(
                "CREATE TRIGGER slow BEFORE INSERT ON events FOR EACH ROW"
                " WHEN (NEW.type = 'slow') EXECUTE FUNCTION wait_at_gate()"
            )
            await first.write("seed", {})
            await poll()

            gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
            async with anyio.create_task_group() as tg:
                tg.start_soon(first.write, "slow", {})  # takes id 2, then waits at the gate
                await until(lambda: lock_waits(gate) == ["advisory"])
                await poll()

                tg.start_soon(second.write, "fast", {})
                # Either it waits for first's transaction (the counter row), or it is done.
                await until(lambda: len(lock_waits(gate)) == 2 or second.writes == 1)
                await poll()
                await poll()

                gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
            await poll()

        log = [event.id for event in await reader.read_events()]
        assert log == [1, 2, 3]
        assert seen == log  # every id, in order, none skipped
        assert [e.type for e in await reader.read_events()] == ["seed", "slow", "fast"]


async def test_replicas_starting_at_once_migrate_the_database_once(pg_url: str) -> None:
    found: dict[str, int | None] = {}

    async def replica(name: str) -> None:
        async with PostgresStore(pg_url) as store:
            found[name] = store.migrated_from
            await store.write(name, {})

    with psycopg.connect(pg_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        async with anyio.create_task_group() as tg:
            tg.start_soon(replica, "a")
            tg.start_soon(replica, "b")
            # Both wait for the migration lock; released, they race for it.
            await until(lambda: lock_waits(holder) == ["advisory", "advisory"])
            holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        [(version,)] = holder.execute("SELECT version FROM schema_version").fetchall()

    # One found a fresh database and migrated it; the other found it done.
    assert sorted(v or 0 for v in found.values()) == [0, SCHEMA_VERSION]
    assert version == SCHEMA_VERSION
    async with PostgresStore(pg_url) as store:
        assert store.migrated_from == SCHEMA_VERSION
        assert sorted(e.type for e in await store.read_events()) == ["a", "b"]


async def test_migrates_an_older_database(pg_url: str) -> None:
    s = make_suggestion()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in _pg_schema.MIGRATIONS[0]:  # the database as version 1 left it
            conn.execute(statement)
        conn.execute("CREATE TABLE schema_version (id integer PRIMARY KEY, version integer)")
        conn.execute("INSERT INTO schema_version VALUES (1, 1)")
        conn.execute("INSERT INTO events VALUES (1, 'old', %s, '{}')", (utcnow(),))
        conn.execute("UPDATE event_counter SET last_id = 1")

    async with PostgresStore(pg_url) as store:
        assert store.migrated_from == 1
        await store.write("new", {}, suggestions=[s])
        assert [e.id for e in await store.read_events()] == [1, 2]
        assert await store.list_suggestions(SuggestionFilter(status=s.status)) == [s]

    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        indexes = {
            name
            for (name,) in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'suggestions'"
            )
        }
        assert "suggestions_status" in indexes


async def test_a_value_postgresql_cannot_store_fails_that_write_alone(pg_url: str) -> None:
    # SQLite stores a NUL character in text; PostgreSQL refuses it (psycopg, before
    # sending): the write is Invalid, and the others in its batch commit.
    backend = PostgresBackend(pg_url)
    fine = [make_suggestion() for _ in range(4)]
    bad = make_suggestion(source="ruff\x00")
    outcomes: dict[str, object] = {}

    async def write(s: Suggestion) -> None:
        try:
            outcomes[s.id] = (await store.write("w", {}, suggestions=[s])).id
        except Invalid as exc:
            outcomes[s.id] = exc

    async with backend.new_store() as store, anyio.create_task_group() as tg:
        with backend.write_lock_held():  # one batch: ok, ok, bad, ok, ok (after "first")
            await queue_in_order(
                tg,
                store,
                partial(store.write, "first", {}),
                *[partial(write, s) for s in fine[:2]],
                partial(write, bad),
                *[partial(write, s) for s in fine[2:]],
            )
    async with backend.new_store() as store:
        in_order = [outcomes[s.id] for s in [*fine[:2], bad, *fine[2:]]]
        assert [o if isinstance(o, int) else "invalid" for o in in_order] == [2, 3, "invalid", 4, 5]
        assert "NUL" in str(in_order[2])
        for s in fine:
            assert await store.get_suggestion(s.id) == s
        with pytest.raises(NotFound):
            await store.get_suggestion(bad.id)


def kill_other_connections(conn: psycopg.Connection[Any]) -> None:
    """What a server restart or failover does to every other session on the database."""
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )


async def test_connections_killed_while_idle_are_never_used(pg_url: str) -> None:
    # The pool checks a connection before handing it out, and the writer gives its
    # own back whenever the queue runs dry: no caller sees the dead ones.
    async with PostgresStore(pg_url) as store:
        await store.write("before", {})
        await until(lambda: store._db is None)  # the writer is idle, its connection pooled
        with psycopg.connect(pg_url, autocommit=True) as conn:
            kill_other_connections(conn)
        assert (await store.write("after", {})).id == 2
        assert await store.last_event_id() == 2
        assert await store.ping()


async def test_a_connection_killed_under_a_batch_fails_that_batch_only(pg_url: str) -> None:
    async with PostgresStore(pg_url) as store, anyio.create_task_group() as tg:
        failed: list[BackendError] = []

        async def doomed() -> None:
            with pytest.raises(BackendError) as caught:
                await store.write("doomed", {})
            failed.append(caught.value)

        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("BEGIN")
            conn.execute("SELECT last_id FROM event_counter WHERE id = 1 FOR UPDATE")
            tg.start_soon(doomed)
            await until(lambda: lock_waits(conn) == ["transactionid"])  # the writer, stuck
            kill_other_connections(conn)
            conn.execute("COMMIT")
            await until(lambda: bool(failed))
        assert (await store.write("next", {})).id == 1  # on a fresh connection, no hole
        assert [e.type for e in await store.read_events()] == ["next"]


async def test_an_unreachable_server_fails_open_with_what_to_check() -> None:
    store = PostgresStore("postgresql://postgres:s3cret-pw@127.0.0.1:1/storykit")
    with pytest.raises(BackendError, match="DATABASE_URL") as caught:
        await store.open()
    assert "s3cret-pw" not in str(caught.value)
    assert not await store.ping()


# -- choosing the store: DATABASE_URL -----------------------------------------------


def test_database_url_is_read_and_never_shown(tmp_path: Path) -> None:
    assert Settings.from_env({}, data_dir=tmp_path).database_url is None
    url = "postgresql://storykit:s3cret-pw@db.internal:5432/storykit"
    settings = Settings.from_env({"DATABASE_URL": url}, data_dir=tmp_path)
    assert settings.database_url == url
    assert "s3cret-pw" not in repr(settings)
    for bad in ("mysql://storykit:s3cret-pw@db/storykit", "db.internal"):
        with pytest.raises(SettingsError, match="DATABASE_URL") as caught:
            Settings.from_env({"DATABASE_URL": bad}, data_dir=tmp_path)
        assert "s3cret-pw" not in str(caught.value)


async def test_open_store_chooses_by_database_url(pg_url: str, tmp_path: Path) -> None:
    async with open_store(make_settings(tmp_path)) as store:
        assert isinstance(store, SqliteStore)
        assert store.path == make_settings(tmp_path).db_path
    settings = dataclasses.replace(make_settings(tmp_path), database_url=pg_url)
    async with open_store(settings) as store:
        assert isinstance(store, PostgresStore)
        await store.write("x", {})
    async with open_core(tmp_path, settings=settings) as core:  # the whole core on it
        assert isinstance(core.store, PostgresStore)
        assert await core.store.last_event_id() == 1
