"""The store suite: SQLite (real files) and PostgreSQL (a database per test), asyncio and trio.

Every test that takes ``store`` or ``backend`` runs on both stores; what only one
store has (SQLite's file settings, its migration from a file of version 1) takes
``db_path`` and runs on SQLite alone. PostgreSQL's own tests (commit-order ids,
concurrent migration) are in test_store_postgres.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.lowlevel
import psycopg
import pytest
from anyio.abc import TaskGroup

from storykit.errors import Conflict, Invalid, NotFound, StorykitError
from storykit.filters import SuggestionFilter
from storykit.ids import new_id
from storykit.models import (
    Action,
    Finding,
    Outcome,
    Plan,
    PolicyDecision,
    Review,
    Risk,
    Status,
    Suggestion,
    Variant,
    to_dict,
    utcnow,
)
from storykit.store import Store
from storykit.store._batch import PendingWrite
from storykit.store._batch import prepare as batch_prepare
from storykit.store._schema import MIGRATIONS, SCHEMA_VERSION
from storykit.store.postgres import PostgresStore
from storykit.store.sqlite import SqliteStore

AnyStore = SqliteStore | PostgresStore

pytestmark = pytest.mark.anyio


def make_suggestion(**overrides: Any) -> Suggestion:
    values: dict[str, Any] = {
        "id": new_id("sug"),
        "source": "ruff",
        "agent": "bot",
        "title": "Fix it",
        "diff": "diff --git a/x.py b/x.py\n",
        "diff_hash": "h1",
        "files": ("x.py",),
    }
    return Suggestion(**(values | overrides))


def make_plan(**overrides: Any) -> Plan:
    variant = Variant(key="all", title="All", suggestion_ids=("sug_1",), diff="d")
    values: dict[str, Any] = {
        "id": new_id("plan"),
        "goal": "ship",
        "variants": (variant,),
        "created_by": "alice",
    }
    return Plan(**(values | overrides))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "storykit.db"


def raw(db_path: Path) -> sqlite3.Connection:
    """A plain connection to the file, as another process would have."""
    return sqlite3.connect(db_path, isolation_level=None)


class Backend(Protocol):
    """One database, and what the tests do to it from outside the store."""

    def new_store(self) -> AnyStore:
        """A store on the database (another one stands for another process)."""

    def write_lock_held(self) -> contextlib.AbstractContextManager[None]:
        """Hold the lock every write transaction takes first, so the store's writer waits."""

    def refuse_events(self, event_type: str) -> None:
        """Make the database itself refuse to store events of this type (a trigger)."""

    def set_schema_version(self, version: int) -> None: ...


class SqliteBackend:
    def __init__(self, path: Path) -> None:
        self.path = path

    def new_store(self) -> SqliteStore:
        return SqliteStore(self.path)

    @contextlib.contextmanager
    def write_lock_held(self) -> Iterator[None]:
        conn = raw(self.path)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("COMMIT")
            conn.close()

    def refuse_events(self, event_type: str) -> None:
        conn = raw(self.path)
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.type = '{event_type}'"
            f" BEGIN SELECT RAISE(ABORT, '{event_type}'); END"
        )
        conn.close()

    def set_schema_version(self, version: int) -> None:
        conn = raw(self.path)
        conn.execute("UPDATE schema_version SET version = ?", (version,))
        conn.close()


class PostgresBackend:
    def __init__(self, url: str) -> None:
        self.url = url

    def new_store(self) -> PostgresStore:
        return PostgresStore(self.url)

    @contextlib.contextmanager
    def write_lock_held(self) -> Iterator[None]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("BEGIN")
            conn.execute("SELECT last_id FROM event_counter WHERE id = 1 FOR UPDATE")
            try:
                yield
            finally:
                conn.execute("COMMIT")

    def refuse_events(self, event_type: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql"
                f" AS $$ BEGIN RAISE EXCEPTION '{event_type}'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW"
                f" WHEN (NEW.type = '{event_type}') EXECUTE FUNCTION refuse()"
            )

    def set_schema_version(self, version: int) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("UPDATE schema_version SET version = %s", (version,))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, db_path: Path) -> Backend:
    if request.param == "sqlite":
        return SqliteBackend(db_path)
    return PostgresBackend(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[AnyStore]:
    async with backend.new_store() as store:
        yield store


async def queue_in_order(
    tg: TaskGroup, store: AnyStore, *calls: Callable[[], Coroutine[Any, Any, object]]
) -> None:
    """Start each call once the previous one is blocked (queued): a known queue order.

    The first call is taken by the writer alone and blocks on the held write lock;
    the rest queue up behind it and so end up in one batch, in this order.
    """
    for call in calls:
        if isinstance(store, SqliteStore):
            tg.start_soon(call)
            await anyio.wait_all_tasks_blocked()
        else:
            await start_and_see_it_queued(tg, store, call)


async def start_and_see_it_queued(
    tg: TaskGroup, store: PostgresStore, call: Callable[[], Coroutine[Any, Any, object]]
) -> None:
    # psycopg's async waits wake every 0.1 s, so on asyncio wait_all_tasks_blocked
    # may never see the writer settle: watch the writer's own counts instead.
    writer = store._writer
    before = writer.in_flight + writer.queued
    tg.start_soon(call)
    await until(lambda: writer.in_flight > 0 and writer.in_flight + writer.queued > before)


async def until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until ``condition()`` holds: a state the test awaits, not a time.

    For states nothing signals (another component's counters, another database
    session's locks); each turn is one checkpoint, never a sleep.
    """
    with anyio.fail_after(10):
        while not condition():
            await anyio.lowlevel.checkpoint()


async def test_is_a_store(store: AnyStore) -> None:
    typed: Store = store  # mypy checks the protocol; this checks it at runtime
    assert await typed.ping()


async def test_driver_matches_the_event_loop(db_path: Path, anyio_backend: str) -> None:
    # aiosqlite on asyncio; on trio (where aiosqlite cannot run) anyio worker threads.
    expected = "_AiosqliteDriver" if anyio_backend == "asyncio" else "_ThreadDriver"
    async with SqliteStore(db_path) as store:
        assert type(store._writer).__name__ == type(store._reader).__name__ == expected


async def test_file_settings(db_path: Path) -> None:
    async with SqliteStore(db_path):
        pass
    conn = raw(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        conn.close()


async def test_suggestion_round_trip(store: AnyStore) -> None:
    s = make_suggestion(
        risk=Risk.MEDIUM,
        findings=(Finding(rule="r", message="m", severity=Outcome.DENY, file="x.py", line=3),),
        reviews=(Review(reviewer="alice", action=Action.APPROVE, diff_hash="h1", comment="ok"),),
        decision=PolicyDecision(id="dec_1", outcome=Outcome.WARN, risk=Risk.MEDIUM),
        metadata={"k": ["v", 1]},
    )
    event = await store.write("suggest.submitted", {"id": s.id}, suggestions=[s])
    assert await store.get_suggestion(s.id) == s
    assert event.type == "suggest.submitted"
    assert event.data == {"id": s.id}
    assert await store.read_events() == [event]


async def test_plan_and_policy_round_trip(store: AnyStore) -> None:
    p = make_plan(selected="all", selected_by="bob")
    assert await store.get_policy_config() is None
    config = {"regexes": [{"pattern": "eval\\(", "outcome": "deny"}], "allow": ["src/**"]}
    await store.write("plan.created", {"id": p.id}, plans=[p], policy_config=config)
    assert await store.get_plan(p.id) == p
    assert await store.get_policy_config() == config
    await store.write("policy.updated", {}, policy_config={"allow": []})
    assert await store.get_policy_config() == {"allow": []}


async def test_missing_rows_raise_not_found(store: AnyStore) -> None:
    with pytest.raises(NotFound):
        await store.get_suggestion("sug_missing")
    with pytest.raises(NotFound):
        await store.get_plan("plan_missing")


async def test_upsert_replaces(store: AnyStore) -> None:
    s = make_suggestion()
    await store.write("suggest.submitted", {}, suggestions=[s])
    later = dataclasses.replace(s, status=Status.APPROVED, updated_at=s.updated_at + timedelta(1))
    await store.write("suggest.reviewed", {}, suggestions=[later])
    assert await store.get_suggestion(s.id) == later
    assert await store.count_suggestions_by_status() == dict.fromkeys(Status, 0) | {
        Status.APPROVED: 1
    }


async def test_filters_and_keyset_pagination(store: AnyStore) -> None:
    suggestions = [
        make_suggestion(
            status=[Status.PENDING, Status.APPROVED, Status.BLOCKED][i % 3],
            source=["ruff", "llm"][i % 2],
            agent=["bot", "other"][i % 2],
            risk=[Risk.LOW, Risk.HIGH][i // 12],
        )
        for i in range(24)
    ]
    await store.write("seed", {}, suggestions=suggestions)
    newest_first = sorted(suggestions, key=lambda s: s.id, reverse=True)

    pages: list[list[Suggestion]] = []
    after = None
    while page := await store.list_suggestions(after=after, limit=5):
        pages.append(page)
        after = page[-1].id
    assert [len(p) for p in pages] == [5, 5, 5, 5, 4]
    assert [s for p in pages for s in p] == newest_first

    def expected(**match: object) -> list[Suggestion]:
        return [s for s in newest_first if all(getattr(s, k) == v for k, v in match.items())]

    approved = SuggestionFilter(status=Status.APPROVED)
    assert await store.list_suggestions(approved, limit=100) == expected(status=Status.APPROVED)
    assert await store.list_suggestions(
        SuggestionFilter(source="llm", risk=Risk.HIGH), limit=100
    ) == expected(source="llm", risk=Risk.HIGH)
    pending_by_bot = expected(status=Status.PENDING, agent="bot")
    by_bot = SuggestionFilter(status=Status.PENDING, agent="bot")
    first = await store.list_suggestions(by_bot, limit=2)
    rest = await store.list_suggestions(by_bot, after=first[-1].id, limit=100)
    assert first + rest == pending_by_bot
    assert await store.count_suggestions_by_status() == {
        Status.PENDING: 8,
        Status.APPROVED: 8,
        Status.REVISION_REQUESTED: 0,
        Status.REJECTED: 0,
        Status.BLOCKED: 8,
        Status.SUPERSEDED: 0,  # every status, with none too
    }


async def test_plans_paginate_newest_first(store: AnyStore) -> None:
    plans = [make_plan() for _ in range(7)]
    for p in plans:
        await store.write("plan.created", {"id": p.id}, plans=[p])
    newest_first = sorted(plans, key=lambda p: p.id, reverse=True)
    first = await store.list_plans(limit=4)
    assert first + await store.list_plans(after=first[-1].id) == newest_first


async def test_bad_limit_is_invalid(store: AnyStore) -> None:
    with pytest.raises(Invalid):
        await store.list_suggestions(limit=0)
    with pytest.raises(Invalid):
        await store.read_events(limit=-1)
    # Beyond 64 bits sqlite3 raises OverflowError, not a database error: refused before.
    for call in (
        partial(store.read_events, after=2**63),
        partial(store.read_events, after=-1),
        partial(store.read_events, limit=2**64),
        partial(store.list_suggestions, limit=2**64),
        partial(store.list_plans, limit=2**64),
    ):
        with pytest.raises(Invalid):
            await call()
    assert await store.read_events(after=2**63 - 1, limit=2**63 - 1) == []


async def test_read_events_from_any_id(store: AnyStore) -> None:
    written = [await store.write("e", {"n": n}) for n in range(10)]
    assert [e.id for e in written] == list(range(1, 11))
    assert await store.last_event_id() == 10
    for after in range(11):
        assert await store.read_events(after=after, limit=1000) == written[after:]
    assert await store.read_events(after=3, limit=2) == written[3:5]


async def test_expect_mismatch_conflicts_and_writes_nothing(store: AnyStore) -> None:
    s = make_suggestion()
    await store.write("suggest.submitted", {}, suggestions=[s])
    newer = dataclasses.replace(s, title="v2", updated_at=s.updated_at + timedelta(seconds=1))
    await store.write("suggest.revised", {}, suggestions=[newer], expect={s.id: s.updated_at})

    stale = dataclasses.replace(s, title="lost update", updated_at=utcnow())
    p = make_plan()
    with pytest.raises(Conflict, match=s.id):
        await store.write(
            "suggest.revised",
            {},
            suggestions=[stale],
            plans=[p],
            policy_config={"x": 1},
            expect={s.id: s.updated_at},  # what the caller read before "v2"
        )
    assert await store.get_suggestion(s.id) == newer
    with pytest.raises(NotFound):
        await store.get_plan(p.id)
    assert await store.get_policy_config() is None
    assert await store.last_event_id() == 2

    with pytest.raises(Conflict):  # a row that does not exist cannot match
        await store.write("x", {}, expect={"sug_gone": utcnow()})
    assert await store.last_event_id() == 2


async def test_concurrent_expects_on_one_row_let_exactly_one_win(store: AnyStore) -> None:
    s = make_suggestion()
    await store.write("suggest.submitted", {}, suggestions=[s])
    outcomes: list[str] = []

    async def review(n: int) -> None:
        mine = dataclasses.replace(s, title=f"by {n}", updated_at=utcnow())
        try:
            await store.write("r", {"n": n}, suggestions=[mine], expect={s.id: s.updated_at})
            outcomes.append(f"by {n}")
        except Conflict:
            outcomes.append("conflict")

    async with anyio.create_task_group() as tg:
        for n in range(10):
            tg.start_soon(review, n)
    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1
    assert (await store.get_suggestion(s.id)).title == winners[0]
    assert await store.last_event_id() == 2


async def test_expect_sees_earlier_writes_in_the_same_batch(
    store: AnyStore, backend: Backend
) -> None:
    s = make_suggestion()
    await store.write("suggest.submitted", {}, suggestions=[s])
    v2 = dataclasses.replace(s, title="v2", updated_at=s.updated_at + timedelta(seconds=1))
    v3 = dataclasses.replace(s, title="v3", updated_at=s.updated_at + timedelta(seconds=2))
    results: dict[str, object] = {}

    async def write(name: str, value: Suggestion, seen: Suggestion) -> None:
        try:
            results[name] = await store.write(
                name, {}, suggestions=[value], expect={s.id: seen.updated_at}
            )
        except Conflict as exc:
            results[name] = exc

    before = store.transactions
    async with anyio.create_task_group() as tg:
        with backend.write_lock_held():  # v3 builds on v2, right behind it in one batch
            await queue_in_order(
                tg,
                store,
                partial(store.write, "first", {}),
                partial(write, "v2", v2, s),
                partial(write, "v3", v3, v2),
            )
    assert store.transactions == before + 2
    assert not isinstance(results["v2"], Conflict)
    assert not isinstance(results["v3"], Conflict)
    assert (await store.get_suggestion(s.id)).title == "v3"


async def test_bad_input_is_invalid_and_writes_nothing(store: AnyStore) -> None:
    good = make_suggestion()
    bad_status = make_suggestion(status="bogus")
    with pytest.raises(Invalid):
        await store.write("x", {"when": object()})
    with pytest.raises(Invalid):
        await store.write("x", {"n": math.nan})
    with pytest.raises(Invalid):
        await store.write("", {})
    with pytest.raises(Invalid):
        await store.write("x", {}, suggestions=[good, bad_status])
    with pytest.raises(Invalid):
        await store.write("x", {}, expect={good.id: "yesterday"})  # type: ignore[dict-item]
    # Text no UTF-8 can hold (an unpaired surrogate, as JSON can carry) anywhere it is stored.
    for kwargs in (
        {"event_type": "x\ud800", "data": {}},
        {"event_type": "x", "data": {"t": "\udfff"}},
        {"event_type": "x", "data": {"\ud800": 1}},
        {"event_type": "x", "data": {}, "suggestions": [make_suggestion(title="\ud800")]},
        {"event_type": "x", "data": {}, "suggestions": [make_suggestion(agent="\ud800")]},
        {"event_type": "x", "data": {}, "plans": [make_plan(goal="\ud800")]},
        {"event_type": "x", "data": {}, "policy_config": {"p": {"deny": ["\ud800"]}}},
    ):
        with pytest.raises(Invalid, match="unpaired surrogate"):
            await store.write(**kwargs)
    assert await store.last_event_id() == 0
    with pytest.raises(NotFound):
        await store.get_suggestion(good.id)


async def test_write_failing_midway_leaves_nothing(store: AnyStore, backend: Backend) -> None:
    # The suggestion upsert succeeds, then the event insert fails inside the database:
    # its savepoint must take the suggestion with it, and only that write.
    backend.refuse_events("boom")
    doomed = make_suggestion()
    fine = [make_suggestion() for _ in range(5)]
    errors: list[Exception] = []

    async def write(event_type: str, s: Suggestion) -> None:
        try:
            await store.write(event_type, {"id": s.id}, suggestions=[s])
        except Invalid as exc:
            errors.append(exc)

    before = store.transactions
    async with anyio.create_task_group() as tg:
        with backend.write_lock_held():  # one batch: ok, ok, boom, ok, ok (after "first")
            await queue_in_order(
                tg,
                store,
                partial(store.write, "first", {}),
                *[partial(write, "ok", s) for s in fine[:2]],
                partial(write, "boom", doomed),
                *[partial(write, "ok", s) for s in fine[2:]],
            )
    assert store.transactions == before + 2
    assert len(errors) == 1
    assert "boom" in str(errors[0])
    with pytest.raises(NotFound):
        await store.get_suggestion(doomed.id)
    for s in fine:
        assert await store.get_suggestion(s.id) == s
    events = await store.read_events()
    assert [e.type for e in events] == ["first"] + ["ok"] * 5
    assert [e.id for e in events] == list(range(1, 7))  # no hole where "boom" was

    with pytest.raises(Invalid):  # and alone, not in a batch
        await store.write("boom", {}, suggestions=[doomed])
    with pytest.raises(NotFound):
        await store.get_suggestion(doomed.id)


@pytest.fixture
async def sqlite_only(db_path: Path) -> AsyncIterator[SqliteStore]:
    """For tests of the SQLite batch itself (the PostgreSQL one has its own)."""
    async with SqliteStore(db_path) as store:
        yield store


def _unencodable_text(w: PendingWrite) -> None:
    w.data_json = '{"t":"\ud800"}'


def _int_beyond_64_bits(w: PendingWrite) -> None:
    row = w.suggestion_rows[0]
    w.suggestion_rows[0] = (*row[:5], 2**64, *row[6:])  # type: ignore[arg-type]


@pytest.mark.parametrize("spoil", [_unencodable_text, _int_beyond_64_bits])
async def test_one_bad_write_in_a_batch_fails_alone(
    sqlite_only: SqliteStore,
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spoil: Callable[[PendingWrite], None],
) -> None:
    # A value that validation missed and sqlite3 cannot bind fails only its own write:
    # the batch is retried write by write, and every other caller's write commits.
    import storykit.store.sqlite as module

    store = sqlite_only

    def prepare(event_type: str, data: Any, **kwargs: Any) -> Any:
        pending = real_prepare(event_type, data, **kwargs)
        if event_type == "bad":
            spoil(pending)  # past validation, as a bug in it would let through
        return pending

    real_prepare = batch_prepare
    monkeypatch.setattr(module, "prepare", prepare)
    doomed = make_suggestion()
    fine = [make_suggestion() for _ in range(6)]
    outcomes: dict[str, object] = {}

    async def write(event_type: str, s: Suggestion) -> None:
        try:
            outcomes[s.id] = await store.write(event_type, {"id": s.id}, suggestions=[s])
        except StorykitError as exc:
            outcomes[s.id] = exc

    async with anyio.create_task_group() as tg:
        with SqliteBackend(db_path).write_lock_held():  # one batch: ok, ok, ok, bad, ok, ok, ok
            await queue_in_order(
                tg,
                store,
                partial(store.write, "first", {}),
                *[partial(write, "ok", s) for s in fine[:3]],
                partial(write, "bad", doomed),
                *[partial(write, "ok", s) for s in fine[3:]],
            )
    assert isinstance(outcomes[doomed.id], Invalid)
    assert all(getattr(outcomes[s.id], "type", None) == "ok" for s in fine), outcomes
    with pytest.raises(NotFound):
        await store.get_suggestion(doomed.id)
    for s in fine:
        assert await store.get_suggestion(s.id) == s
    assert [e.type for e in await store.read_events()] == ["first"] + ["ok"] * 6


async def test_many_concurrent_writers_group_commit(store: AnyStore) -> None:
    tasks, per_task = 40, 10
    ids: dict[int, list[int]] = {n: [] for n in range(tasks)}

    async def writer(n: int) -> None:
        for i in range(per_task):
            s = make_suggestion(title=f"{n}/{i}")
            event = await store.write("w", {"n": n, "i": i}, suggestions=[s])
            ids[n].append(event.id)

    async with anyio.create_task_group() as tg:
        for n in range(tasks):
            tg.start_soon(writer, n)
    everything = [i for per in ids.values() for i in per]
    total = tasks * per_task
    assert sorted(everything) == list(range(1, total + 1))  # distinct, no holes
    for per in ids.values():  # each caller's ids increase in the order it wrote
        assert per == sorted(per)
    log = await store.read_events(limit=total + 1)
    assert len(log) == total
    assert len(await store.list_suggestions(limit=total + 1)) == total
    assert store.writes == total
    assert store.transactions < total  # writes really shared transactions


async def test_two_stores_on_one_database(backend: Backend) -> None:
    """Two instances stand for two processes (the server and the CLI, or two replicas)."""
    async with backend.new_store() as a, backend.new_store() as b:
        got: dict[str, list[int]] = {"a": [], "b": []}

        async def writer(name: str, store: AnyStore) -> None:
            for i in range(30):
                got[name].append((await store.write(name, {"i": i})).id)

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(writer, "a", a)
                tg.start_soon(writer, "b", b)
        assert sorted(got["a"] + got["b"]) == list(range(1, 181))
        assert await a.read_events(limit=500) == await b.read_events(limit=500)

        s = make_suggestion()
        await a.write("suggest.submitted", {}, suggestions=[s])
        seen_by_b = await b.get_suggestion(s.id)
        await a.write("r", {}, suggestions=[dataclasses.replace(s, updated_at=utcnow())])
        with pytest.raises(Conflict):
            await b.write("r", {}, suggestions=[seen_by_b], expect={s.id: seen_by_b.updated_at})


async def test_migrates_an_older_database(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    s = make_suggestion(status=Status.APPROVED)
    conn = raw(db_path)
    for statement in MIGRATIONS[0]:  # the file as version 1 left it
        conn.execute(statement)
    conn.execute("CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER)")
    conn.execute("INSERT INTO schema_version VALUES (1, 1)")
    conn.execute(
        "INSERT INTO suggestions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (s.id, "approved", s.source, s.agent, "unknown", "", "", json.dumps(to_dict(s))),
    )
    conn.execute(
        "INSERT INTO events (type, at, data) VALUES ('old', ?, '{}')", (utcnow().isoformat(),)
    )
    conn.close()

    async with SqliteStore(db_path) as store:
        assert await store.get_suggestion(s.id) == s
        assert await store.list_suggestions(SuggestionFilter(status=Status.APPROVED)) == [s]
        assert (await store.write("new", {})).id == 2

    conn = raw(db_path)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "suggestions_status" in indexes
    finally:
        conn.close()


async def test_refuses_a_newer_database(backend: Backend) -> None:
    async with backend.new_store():
        pass
    backend.set_schema_version(1000)
    with pytest.raises(StorykitError, match="newer"):
        await backend.new_store().open()


async def test_cancelled_before_the_writer_takes_it_is_withdrawn(
    store: AnyStore, backend: Backend
) -> None:
    async with anyio.create_task_group() as tg:
        with backend.write_lock_held():  # the writer is stuck on "first"
            await queue_in_order(tg, store, partial(store.write, "first", {}))
            with anyio.CancelScope() as scope:
                scope.cancel()
                await store.write("withdrawn", {})
            await queue_in_order(tg, store, partial(store.write, "kept", {}))
    assert [e.type for e in await store.read_events()] == ["first", "kept"]


async def test_aclose_flushes_queued_writes(backend: Backend) -> None:
    started: list[int] = []
    done: list[int] = []
    store = backend.new_store()

    async def write(n: int) -> None:
        started.append(n)  # and queued: write() queues before its first await
        done.append((await store.write("w", {"n": n})).id)

    async with anyio.create_task_group() as tg:
        await store.open()  # inside the task group: open and aclose must nest like scopes
        for n in range(20):
            tg.start_soon(write, n)
        await until(lambda: len(started) == 20)  # all queued, most not yet written
        await store.aclose()
    assert sorted(done) == list(range(1, 21))
    assert not await store.ping()
    with pytest.raises(RuntimeError):
        await store.write("late", {})
