"""What the commands talk to: the use cases, and the small event interface beneath them.

Two transports implement :class:`Client`:

- local (the default, :mod:`storykit_cli._local`): the core in this process, on the
  local data directory, acting as a local admin named after the OS user;
- remote (``--url``, :mod:`storykit_cli._remote`): a running server over HTTP with an
  API key.

Both return exactly the JSON the HTTP API returns (the core's
:mod:`storykit.replies`), so ``--json`` output is the same whichever mode ran it.
Following the event log and watching a run's progress are written once, in
:mod:`storykit_cli.watch`, over the part of a transport that :class:`Transport` names:
the stored log and the live stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from storykit.filters import SuggestionFilter

__all__ = ["JSON", "Client", "Missed", "Position", "StreamItem", "StreamLost", "Transport"]

JSON = dict[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Position:
    """Where a stream starts (SSE ``ready``), or that it restarted there (``reset``).

    Every event after ``head`` will follow. ``reset``: the id asked to resume from is
    not in this log (``epoch``), so the stream starts at its head instead.
    """

    head: int
    epoch: str
    reset: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Missed:
    """Events ``first_id..last_id`` the stream dropped (a full queue): read them from the log."""

    first_id: int
    last_id: int


StreamItem = Position | Missed | JSON
"""What a stream yields: a :class:`Position` first, then events (as the API's JSON) and
:class:`Missed` notes, in id order."""


class StreamLost(Exception):
    """The live stream broke (a dropped connection, a server that stopped): reconnect."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Transport(Protocol):
    """The part of a transport that following and progress need."""

    @property
    def where(self) -> str:
        """What the transport reaches, for notices: the server's URL, the data directory."""
        ...

    async def read_events(self, *, after: int, limit: int) -> JSON:
        """A page of ``GET /events/log``: ``{"items", "last_id", "head"}``."""
        ...

    def stream(
        self, *, after: int | None, epoch: str | None
    ) -> AbstractAsyncContextManager[AsyncIterator[StreamItem]]:
        """The live events after ``after`` (None: from the log's head) of the log
        ``epoch`` names (None: any), subscribed on entry.

        Iterating it raises :class:`StreamLost` when the stream breaks; it ends only when
        the transport closes. A refusal (a bad key) is a
        :class:`~storykit.errors.StorykitError`, and retrying would not help.
        """
        ...


class Client(Transport, Protocol):
    """The use cases, as the HTTP API shapes them."""

    async def generate(
        self, *, sources: Sequence[str] | None, paths: Sequence[str], run: str | None = None
    ) -> JSON:
        """``run``: the id the run's events carry (:func:`storykit_cli.watch.generate`)."""
        ...

    async def list_suggestions(
        self, where: SuggestionFilter, *, after: str | None, limit: int
    ) -> JSON: ...

    async def get_suggestion(self, suggestion_id: str) -> JSON: ...

    async def submit(
        self,
        *,
        title: str,
        diff: str,
        rationale: str,
        base_ref: str,
        idempotency_key: str | None = None,
    ) -> JSON: ...

    async def revise(
        self,
        suggestion_id: str,
        *,
        diff: str,
        title: str | None,
        rationale: str | None,
        idempotency_key: str | None = None,
    ) -> JSON: ...

    async def review(
        self,
        suggestion_id: str,
        *,
        action: str,
        comment: str,
        comments: Sequence[Mapping[str, Any]] = (),
    ) -> JSON: ...

    async def review_many(
        self,
        *,
        action: str,
        comment: str,
        ids: Sequence[str] | None,
        where: SuggestionFilter | None,
        limit: int,
    ) -> JSON:
        """``POST /suggest/review/bulk``: ``{"items": [{id, ok, status, problem}], …}``."""
        ...

    async def list_revisions(self, suggestion_id: str) -> JSON: ...

    async def get_revision(self, suggestion_id: str, number: int) -> JSON: ...

    async def interdiff(
        self, suggestion_id: str, *, start: int | None, end: int | None
    ) -> JSON: ...

    async def refine(
        self, suggestion_id: str, *, instructions: str, refiner: str | None
    ) -> JSON: ...

    async def plan(self, *, goal: str, suggestion_ids: Sequence[str] | None) -> JSON: ...

    async def list_plans(self, *, after: str | None, limit: int) -> JSON: ...

    async def get_plan(self, plan_id: str) -> JSON: ...

    async def select(self, plan_id: str, *, variant: str) -> JSON: ...

    async def open_pr(
        self, plan_id: str, *, variant: str | None, dry_run: bool, branch: str | None = None
    ) -> JSON: ...

    async def get_policies(self) -> JSON: ...

    async def set_policies(self, document: object) -> JSON: ...

    async def check_diff(
        self, *, diff: str, title: str, rationale: str, base_ref: str = "HEAD"
    ) -> JSON: ...

    async def plugins(self) -> JSON: ...
