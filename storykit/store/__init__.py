"""The store interface the services use.

One implementation ships (SQLite, :mod:`storykit.store.sqlite`); a PostgreSQL
store can implement the same protocol later without touching the services.

Every write pairs a state change with exactly one event, in one transaction: a
reader never sees a suggestion whose event is missing, or the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from storykit.models import Event, Plan, Risk, Status, Suggestion

__all__ = ["Store"]


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
        *,
        status: Status | None = None,
        source: str | None = None,
        agent: str | None = None,
        risk: Risk | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Suggestion]:
        """Newest first; ``after`` is the last id of the previous page (keyset pagination)."""

    async def count_suggestions_by_status(self) -> dict[Status, int]:
        """How many suggestions there are in each status."""

    async def get_plan(self, plan_id: str) -> Plan:
        """The plan, or raise :class:`~storykit.errors.NotFound`."""

    async def list_plans(self, *, after: str | None = None, limit: int = 50) -> list[Plan]:
        """Newest first, keyset-paginated like :meth:`list_suggestions`."""

    async def get_policy_config(self) -> Mapping[str, Any] | None:
        """The stored policy configuration, or None if never set."""

    async def read_events(self, *, after: int = 0, limit: int = 100) -> list[Event]:
        """Events with ``id > after``, oldest first, at most ``limit``."""

    async def last_event_id(self) -> int:
        """The id of the newest event, 0 if there is none."""

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
    ) -> Event:
        """Upsert the given values and append one event, atomically; return the event.

        ``expect`` maps ids of suggestions or plans to the ``updated_at`` the caller
        read; if any row changed since, nothing is written and
        :class:`~storykit.errors.Conflict` is raised (optimistic concurrency).
        Concurrent writes are group-committed: many callers, one transaction.
        """
