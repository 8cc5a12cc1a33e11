"""One small client interface, two implementations, so each command is written once.

- local (the default): the core in this process, on the local data directory, acting
  as a local admin named after the OS user;
- remote (``--url``): a running server over HTTP with an API key.

Both return exactly the JSON the HTTP API returns (``to_dict`` of the models, and the
routes' list envelopes), so ``--json`` output is the same whichever mode ran it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

__all__ = ["JSON", "Client", "Connection", "OnProgress", "connect"]

JSON = dict[str, Any]
OnProgress = Callable[[Mapping[str, Any]], None]
"""Called with each ``suggest.progress`` event's data while ``generate`` runs."""


class Client(Protocol):
    """The use cases, as the HTTP API shapes them."""

    async def generate(
        self,
        *,
        sources: Sequence[str] | None,
        paths: Sequence[str],
        on_progress: OnProgress | None = None,
    ) -> JSON: ...

    async def list_suggestions(
        self,
        *,
        status: str | None,
        source: str | None,
        agent: str | None,
        risk: str | None,
        after: str | None,
        limit: int,
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

    async def review(self, suggestion_id: str, *, action: str, comment: str) -> JSON: ...

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

    async def check_diff(self, *, diff: str, title: str, rationale: str) -> JSON: ...

    async def plugins(self) -> JSON: ...

    async def read_events(self, *, after: int, limit: int) -> JSON: ...

    def follow_events(self, *, after: int | None) -> AsyncIterator[JSON]:
        """Every event after ``after`` (None: from now on), in id order, until cancelled.

        Events a slow consumer missed are read back from the log, and a remote
        stream reconnects after a disconnect, resuming with ``Last-Event-ID``.
        """
        ...


def reset_notice(last: int | None, head: int) -> str:
    """What a follower says when the event log does not have the id it resumes from."""
    return (
        f"event {last} is not in the event log (its newest is {head}; a replaced or"
        " restored database?); following from there"
    )


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Connection:
    """Where the commands run: the global options that choose the mode."""

    url: str | None = None
    key: str | None = dataclasses.field(default=None, repr=False)
    data_dir: Path | None = None
    on_notice: Callable[[str], None] | None = None
    """Where a client reports what it works around: a lost connection it is retrying, a
    resume point the event log does not have (stderr)."""


@contextlib.asynccontextmanager
async def connect(connection: Connection) -> AsyncIterator[Client]:
    """A client for ``connection``: remote with ``url``, else local."""
    if connection.url:
        from storykit_cli._remote import RemoteClient

        async with RemoteClient.open(
            connection.url, connection.key, on_notice=connection.on_notice
        ) as remote:
            yield remote
    else:
        from storykit_cli._local import LocalClient

        async with LocalClient.open(connection.data_dir, on_notice=connection.on_notice) as local:
            yield local
