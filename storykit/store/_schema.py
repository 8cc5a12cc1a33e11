"""The SQLite schema, as an ordered list of migrations.

``schema_version`` holds one row: how many steps of :data:`MIGRATIONS` the file
has had. :func:`migrate` applies the missing ones in one ``BEGIN IMMEDIATE``
transaction, so two processes opening a fresh file at once cannot both migrate
it, and a failing step leaves the file as it was. Steps are append-only: never
edit a released one, add a new one.

Enum-valued columns (``status``, ``risk``) get no CHECK constraint on purpose:
SQLite cannot alter a constraint without rebuilding the table, and the values are
validated in Python before they reach SQL.
"""

from __future__ import annotations

from storykit.errors import StorykitError
from storykit.store._driver import Driver, rollback

__all__ = ["MIGRATIONS", "PRAGMAS", "SCHEMA_VERSION", "migrate"]

# busy_timeout first: switching to WAL may itself have to wait for another process.
PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    # In WAL mode NORMAL is safe against corruption; a power cut may lose the last
    # commits, never tear them. FULL would fsync on every (group) commit.
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the tables. Each row keeps the full JSON document from ``to_dict``; the
    # other columns are copies of its fields that queries filter on.
    (
        """CREATE TABLE suggestions (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            source TEXT NOT NULL,
            agent TEXT NOT NULL,
            risk TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            doc TEXT NOT NULL
        )""",
        """CREATE TABLE plans (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            doc TEXT NOT NULL
        )""",
        """CREATE TABLE policy_config (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            updated_at TEXT NOT NULL,
            doc TEXT NOT NULL
        )""",
        # AUTOINCREMENT: an id is never reused, even after the newest row is
        # deleted, so a client's Last-Event-ID can never point at a different event.
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type TEXT NOT NULL,
            at TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
    ),
    # 2: indexes for the list filters; each ends in id for newest-first keyset pages.
    (
        "CREATE INDEX suggestions_status ON suggestions (status, id)",
        "CREATE INDEX suggestions_source ON suggestions (source, id)",
        "CREATE INDEX suggestions_agent ON suggestions (agent, id)",
        "CREATE INDEX suggestions_risk ON suggestions (risk, id)",
    ),
    # 3: idempotency keys (storykit.idempotency). The primary key is what makes two
    # concurrent requests with one key unable to both create: the second write's
    # transaction fails on it and is rolled back whole.
    (
        """CREATE TABLE idempotency_keys (
            agent TEXT NOT NULL,
            route TEXT NOT NULL,
            key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            suggestion_id TEXT NOT NULL REFERENCES suggestions (id) ON DELETE CASCADE,
            response TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (agent, route, key)
        ) WITHOUT ROWID""",
    ),
    # 4: shared state no process may keep to itself (SPEC §8). SSE tickets, by a hash
    # of the ticket, with their expiry as Unix seconds by SQLite's clock; and each
    # observer's progress through the event log, with the lease of the process that
    # runs it (storykit.observers).
    (
        """CREATE TABLE sse_tickets (
            digest TEXT PRIMARY KEY,
            principal TEXT NOT NULL,
            role TEXT NOT NULL,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX sse_tickets_expiry ON sse_tickets (expires_at)",
        """CREATE TABLE observer_cursors (
            name TEXT PRIMARY KEY,
            last_id INTEGER NOT NULL,
            owner TEXT,
            lease_until REAL NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
    ),
    # 5: the event log's epoch, a random id made once per database, so a client can tell
    # an id from this log from the same number in another (a replaced or recreated file).
    (
        "CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), epoch TEXT NOT NULL)",
        "INSERT INTO meta (id, epoch) VALUES (1, lower(hex(randomblob(16))))",
    ),
    # 6: pull requests storykit follows after opening them (storykit.pulls). The plan's
    # document holds each one's state; this index finds the plan a forge's webhook is
    # about, and the open ones to poll. Webhook deliveries already handled, by the id the
    # forge gave them, so a replayed delivery is ignored by every process on the file;
    # received_at is Unix seconds by SQLite's clock, for purging old ones.
    (
        """CREATE TABLE pull_requests (
            backend TEXT NOT NULL,
            repository TEXT NOT NULL,
            number INTEGER NOT NULL,
            plan_id TEXT NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
            state TEXT NOT NULL,
            PRIMARY KEY (backend, repository, number)
        ) WITHOUT ROWID""",
        "CREATE INDEX pull_requests_state ON pull_requests (state, plan_id)",
        """CREATE TABLE webhook_deliveries (
            forge TEXT NOT NULL,
            delivery TEXT NOT NULL,
            received_at REAL NOT NULL,
            PRIMARY KEY (forge, delivery)
        ) WITHOUT ROWID""",
        "CREATE INDEX webhook_deliveries_age ON webhook_deliveries (received_at)",
    ),
    # 7: every revision of a suggestion's diff (storykit.models.Revision), written with the
    # suggestion by the write that makes it. A rowid table: a revision's document holds a
    # whole diff, and SQLite keeps big rows better out of a WITHOUT ROWID b-tree. Suggestions
    # stored before this step have no rows; the core reads their current revision from
    # the suggestion itself.
    (
        """CREATE TABLE suggestion_revisions (
            suggestion_id TEXT NOT NULL REFERENCES suggestions (id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            at TEXT NOT NULL,
            doc TEXT NOT NULL,
            PRIMARY KEY (suggestion_id, number)
        )""",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(db: Driver) -> int:
    """Bring the file to :data:`SCHEMA_VERSION`; return the version it had before."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
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
        await db.execute(
            "INSERT INTO schema_version (id, version) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            (SCHEMA_VERSION,),
        )
        await db.execute("COMMIT")
    except BaseException:
        await rollback(db)
        raise
    return found
