"""The PostgreSQL schema, as an ordered list of migrations.

The same shape as the SQLite schema (:mod:`._schema`), so both stores answer
alike: ``schema_version`` holds how many steps of :data:`MIGRATIONS` the database
has had, and :func:`migrate` applies the missing ones in one transaction (DDL is
transactional in PostgreSQL: a failing step leaves the database as it was).
Several replicas may start at once: each takes one advisory lock first, so they
migrate one after the other and every one after the first finds nothing to do.
Steps are append-only: never edit a released one, add a new one.

Choices (docs/decisions/0008-postgres-ids-and-driver.md):

- documents are ``text``, not ``jsonb``: what storykit wrote is what it reads
  back, byte for byte (key order kept, ``\\u0000`` accepted, no re-encoding), and
  no query looks inside a document; the columns beside it are copies of the
  fields queries filter on.
- ids are ``COLLATE "C"``: byte order, as SQLite compares, so keyset pages and
  "newest first" are the same on both stores whatever the database's locale.
- event ids come from ``event_counter``, a one-row table each write transaction
  locks, never from a sequence: ids become visible in commit order, with no holes.
"""

from __future__ import annotations

from storykit.errors import StorykitError
from storykit.store._driver import Driver
from storykit.store._pg_driver import rollback

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

# pg_advisory_xact_lock key: "storykit" as a big-endian 64-bit integer. Advisory
# locks are per database, so stores on other databases never wait for this one.
LOCK_KEY = int.from_bytes(b"storykit", "big")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the tables. Each row keeps the full JSON document from ``to_dict``; the
    # other columns are copies of its fields that queries filter on.
    (
        """CREATE TABLE suggestions (
            id text COLLATE "C" PRIMARY KEY,
            status text NOT NULL,
            source text NOT NULL,
            agent text NOT NULL,
            risk text NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            doc text NOT NULL
        )""",
        """CREATE TABLE plans (
            id text COLLATE "C" PRIMARY KEY,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            doc text NOT NULL
        )""",
        """CREATE TABLE policy_config (
            id integer PRIMARY KEY CHECK (id = 1),
            updated_at timestamptz NOT NULL,
            doc text NOT NULL
        )""",
        # No default: the writer numbers events from event_counter.
        """CREATE TABLE events (
            id bigint PRIMARY KEY,
            type text NOT NULL,
            at timestamptz NOT NULL,
            data text NOT NULL
        )""",
        # The last event id handed out. Every write transaction locks this row
        # first (SELECT … FOR UPDATE) and holds it to COMMIT, so transactions take
        # ids one after the other and commit in that order: a reader can never see
        # id n+1 while n is still to come (a sequence would allow exactly that).
        """CREATE TABLE event_counter (
            id integer PRIMARY KEY CHECK (id = 1),
            last_id bigint NOT NULL
        )""",
        "INSERT INTO event_counter (id, last_id) VALUES (1, 0)",
    ),
    # 2: indexes for the list filters; each ends in id for newest-first keyset pages.
    (
        "CREATE INDEX suggestions_status ON suggestions (status, id)",
        "CREATE INDEX suggestions_source ON suggestions (source, id)",
        "CREATE INDEX suggestions_agent ON suggestions (agent, id)",
        "CREATE INDEX suggestions_risk ON suggestions (risk, id)",
    ),
    # 3: idempotency keys (storykit.idempotency); the primary key stops two concurrent
    # requests with one key from both creating.
    (
        """CREATE TABLE idempotency_keys (
            agent text COLLATE "C" NOT NULL,
            route text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            request_hash text NOT NULL,
            suggestion_id text COLLATE "C" NOT NULL REFERENCES suggestions (id) ON DELETE CASCADE,
            response text NOT NULL,
            created_at timestamptz NOT NULL,
            PRIMARY KEY (agent, route, key)
        )""",
    ),
    # 4: shared state no replica may keep to itself (SPEC §8): SSE tickets (by a hash
    # of the ticket), each observer's progress through the event log (the row is
    # locked FOR UPDATE SKIP LOCKED by whoever runs the observer, storykit.observers),
    # and the rate limiter's GCRA state (storykit.ratelimit). rate_limits is UNLOGGED:
    # cheap to write, and after a crash or a failover it starts empty, which only
    # forgives a few requests.
    (
        """CREATE TABLE sse_tickets (
            digest text COLLATE "C" PRIMARY KEY,
            principal text NOT NULL,
            role text NOT NULL,
            expires_at timestamptz NOT NULL
        )""",
        "CREATE INDEX sse_tickets_expiry ON sse_tickets (expires_at)",
        """CREATE TABLE observer_cursors (
            name text COLLATE "C" PRIMARY KEY,
            last_id bigint NOT NULL
        )""",
        """CREATE UNLOGGED TABLE rate_limits (
            key text COLLATE "C" PRIMARY KEY,
            tat double precision NOT NULL,
            seen double precision NOT NULL,
            allowed boolean NOT NULL
        )""",
    ),
    # 5: the event log's epoch, a random id made once per database, so a client can tell
    # an id from this log from the same number in another (a restored or recreated one).
    (
        "CREATE TABLE meta (id integer PRIMARY KEY CHECK (id = 1), epoch text NOT NULL)",
        "INSERT INTO meta (id, epoch) VALUES (1, replace(gen_random_uuid()::text, '-', ''))",
    ),
    # 6: pull requests storykit follows after opening them (storykit.pulls): an index from
    # the forge's name of one to its plan (whose document holds the state), and the
    # webhook deliveries already handled, so a replayed one is ignored on every replica.
    (
        """CREATE TABLE pull_requests (
            backend text COLLATE "C" NOT NULL,
            repository text COLLATE "C" NOT NULL,
            number bigint NOT NULL,
            plan_id text COLLATE "C" NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
            state text NOT NULL,
            PRIMARY KEY (backend, repository, number)
        )""",
        "CREATE INDEX pull_requests_state ON pull_requests (state, plan_id)",
        """CREATE TABLE webhook_deliveries (
            forge text COLLATE "C" NOT NULL,
            delivery text COLLATE "C" NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (forge, delivery)
        )""",
        "CREATE INDEX webhook_deliveries_age ON webhook_deliveries (received_at)",
    ),
    # 7: every revision of a suggestion's diff (storykit.models.Revision), written with the
    # suggestion by the write that makes it; suggestions stored before this step have none
    # (the core reads their current revision from the suggestion itself).
    (
        """CREATE TABLE suggestion_revisions (
            suggestion_id text COLLATE "C" NOT NULL
                REFERENCES suggestions (id) ON DELETE CASCADE,
            number integer NOT NULL,
            at timestamptz NOT NULL,
            doc text NOT NULL,
            PRIMARY KEY (suggestion_id, number)
        )""",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(db: Driver) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; return the version it had before."""
    await db.execute("BEGIN")
    try:
        # Before anything else, held to COMMIT: a second replica waits here, then
        # finds the tables made and the version current.
        await db.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)"
        )
        rows = await db.execute("SELECT version FROM schema_version WHERE id = 1")
        found = int(rows[0][0]) if rows else 0
        if found > SCHEMA_VERSION:
            raise StorykitError(
                f"the database has schema version {found}, newer than this storykit "
                f"understands ({SCHEMA_VERSION}); upgrade storykit"
            )
        for step in MIGRATIONS[found:]:
            for statement in step:
                await db.execute(statement)
        if found != SCHEMA_VERSION:
            await db.execute(
                "INSERT INTO schema_version (id, version) VALUES (1, %s)"
                " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                (SCHEMA_VERSION,),
            )
        await db.execute("COMMIT")
    except BaseException:
        await rollback(db)
        raise
    return found
