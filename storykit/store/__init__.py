"""The store interface the services use, and :func:`open_store`, which picks one.

Two implementations ship: SQLite (:mod:`storykit.store.sqlite`, the embedded
default) and PostgreSQL (:mod:`storykit.store.postgres`, for several replicas,
chosen by ``DATABASE_URL``). They answer alike; one test suite runs on both.

Every write pairs a state change with exactly one event, in one transaction: a
reader never sees a suggestion whose event is missing, or the reverse.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from storykit.auth import Principal
from storykit.errors import NotConfigured
from storykit.filters import SuggestionFilter
from storykit.idempotency import IdempotentResult
from storykit.models import Event, Plan, PRState, Revision, Status, Suggestion

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from storykit.settings import Settings

__all__ = ["Store", "Watchable", "open_store"]


@contextlib.asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """The store the settings choose, open: PostgreSQL if ``DATABASE_URL`` is set, else SQLite."""
    store: Store
    if settings.database_url:
        try:
            from storykit.store.postgres import PostgresStore
        except ImportError as exc:  # psycopg is the optional extra "postgres"
            raise NotConfigured(
                f"DATABASE_URL is set but the PostgreSQL driver is missing ({exc});"
                " install it with: pip install 'storykit[postgres]'"
            ) from exc
        store = PostgresStore(settings.database_url)
    else:
        from storykit.store.sqlite import SqliteStore

        store = SqliteStore(settings.db_path)
    await store.open()
    try:
        yield store
    finally:
        await store.aclose()


class Store(Protocol):
    async def open(self) -> None:
        """Connect, migrate the schema to the current version."""

    async def aclose(self) -> None:
        """Flush pending writes and close."""

    async def ping(self) -> bool:
        """True if the database answers (readiness)."""

    # -- reads ---------------------------------------------------------------
    async def get_suggestion(self, suggestion_id: str) -> Suggestion:
        """The suggestion, or raise :class:`~storykit.errors.NotFound`."""

    async def list_suggestions(
        self,
        where: SuggestionFilter | None = None,
        *,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Suggestion]:
        """Newest first, those ``where`` matches (default: all); ``after`` is the last id
        of the previous page (keyset pagination)."""

    async def list_revisions(self, suggestion_id: str) -> list[Revision]:
        """The suggestion's kept revisions, oldest first (none for an unknown id)."""

    async def get_revision(self, suggestion_id: str, number: int) -> Revision:
        """One kept revision, or raise :class:`~storykit.errors.NotFound`."""

    async def count_suggestions_by_status(self) -> dict[Status, int]:
        """How many suggestions there are in each status."""

    async def get_plan(self, plan_id: str) -> Plan:
        """The plan, or raise :class:`~storykit.errors.NotFound`."""

    async def list_plans(self, *, after: str | None = None, limit: int = 50) -> list[Plan]:
        """Newest first, keyset-paginated like :meth:`list_suggestions`."""

    async def get_policy_config(self) -> Mapping[str, Any] | None:
        """The stored policy configuration, or None if never set."""

    async def get_idempotent(self, agent: str, route: str, key: str) -> IdempotentResult | None:
        """What an idempotency key produced (:mod:`storykit.idempotency`), or None."""

    async def read_events(self, *, after: int = 0, limit: int = 100) -> list[Event]:
        """Events with ``id > after``, oldest first, at most ``limit``."""

    async def last_event_id(self) -> int:
        """The id of the newest event, 0 if there is none."""

    async def find_pull_request(self, backend: str, repository: str, number: int) -> str | None:
        """The id of the plan holding that pull request, or None."""

    async def list_pull_requests(self, *, state: PRState) -> list[tuple[str, str, int, str]]:
        """``(backend, repository, number, plan_id)`` of every pull request in ``state``."""

    async def delivery_seen(self, forge: str, delivery: str) -> bool:
        """Whether that webhook delivery was handled already."""

    async def record_delivery(self, forge: str, delivery: str) -> bool:
        """Record a handled delivery that changed nothing; False if it was recorded
        already. Purges deliveries older than 30 days (forges redeliver for days, not months)."""

    # -- shared state (SPEC §8: nothing a request needs lives in one process) ---
    async def issue_ticket(self, principal: Principal, ttl: float) -> str:
        """A new single-use SSE ticket for ``principal``, valid ``ttl`` seconds by the
        database's clock (:mod:`storykit.tickets`); purges expired ones."""

    async def redeem_ticket(self, ticket: str) -> Principal | None:
        """Who the ticket was made for, once: None if unknown, used or expired."""

    async def ensure_cursors(self, observers: Sequence[str]) -> None:
        """Give each observer without one a cursor at the newest event (it sees what
        comes after)."""

    def claim_events(
        self, observer: str, *, limit: int = 100, lease: float = 30.0
    ) -> AbstractAsyncContextManager[list[Event] | None]:
        """The next events (up to ``limit``) ``observer`` has not seen, held for this
        process; None when another process holds the observer.

        The cursor moves past the events only when the block exits without an error,
        so an observer's events are run by one process at a time, in order; a
        process that dies inside the block leaves them to the next one
        (:mod:`storykit.observers`).
        """

    async def epoch(self) -> str:
        """This event log's id: random, made once with the database, never changed.

        Event ids count within one log; a client resuming with an id and the epoch it
        came from can tell a replaced database (same ids, other events) from its own.
        """

    # -- writes --------------------------------------------------------------
    async def write(
        self,
        event_type: str,
        data: Mapping[str, Any],
        *,
        suggestions: Sequence[Suggestion] = (),
        plans: Sequence[Plan] = (),
        policy_config: Mapping[str, Any] | None = None,
        expect: Mapping[str, datetime] | None = None,
        policy_expect: Mapping[str, Any] | None = None,
        idempotency: IdempotentResult | None = None,
        delivery: tuple[str, str] | None = None,
        revisions: Sequence[Revision] = (),
    ) -> Event:
        """Upsert the given values and append one event, atomically; return the event.

        ``expect`` maps ids of suggestions or plans to the ``updated_at`` the caller
        read; if any row changed since, nothing is written and
        :class:`~storykit.errors.Conflict` is raised (optimistic concurrency).
        ``policy_expect`` does the same for the stored policy config (none stored
        counts as ``{}``). ``idempotency`` records a key in the same transaction; a
        key already recorded fails the write (:class:`~storykit.errors.Invalid`),
        writing nothing; so does a ``delivery`` (``(forge, delivery id)``, a webhook
        delivery this write handles) already recorded. The pull requests of each plan
        written are indexed for :meth:`find_pull_request` in the same transaction.
        ``revisions`` keeps new revisions of suggestions written here
        (with them, never alone); a revision number already kept fails the write
        (:class:`~storykit.errors.Invalid`).
        Concurrent writes are group-committed: many callers, one transaction.
        """


@runtime_checkable
class Watchable(Protocol):
    """A store that can tell when another process committed (PostgreSQL's LISTEN/NOTIFY)."""

    def watch(self, on_notify: Callable[[], object]) -> None:
        """Call ``on_notify()`` after each commit anywhere, until the store closes."""
