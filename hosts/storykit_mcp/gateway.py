"""What the tools call: the agent's use cases, as the HTTP API shapes them.

Two implementations, so each tool is written once: :class:`~storykit_mcp.local.CoreGateway`
runs the core in this process (``/mcp`` in the web host, ``storykit mcp`` without
``--url``); :class:`~storykit_mcp.remote.RemoteGateway` calls a server's HTTP API
(``storykit mcp --url``). Both return exactly the JSON the HTTP API returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["JSON", "MAX_WAIT", "Gateway", "decision", "settled"]

JSON = dict[str, Any]
MAX_WAIT = 45.0
"""Seconds ``wait_for_review`` holds a call at most: many agents give up on a tool at 60 s."""


class Gateway(Protocol):
    async def check_diff(
        self, *, diff: str, title: str, rationale: str, base_ref: str = "HEAD"
    ) -> JSON: ...

    async def submit(
        self,
        *,
        title: str,
        diff: str,
        rationale: str,
        base_ref: str,
        idempotency_key: str | None,
    ) -> JSON: ...

    async def get_suggestion(self, suggestion_id: str) -> JSON: ...

    async def wait_for_review(self, suggestion_id: str, *, seconds: float) -> JSON:
        """The suggestion as soon as it is :func:`settled`, or as it is after ``seconds``
        (at most :data:`MAX_WAIT`). Woken by the suggestion's events, never by polling."""
        ...

    async def revise(self, suggestion_id: str, *, diff: str, rationale: str | None) -> JSON: ...

    async def list_revisions(self, suggestion_id: str) -> JSON:
        """``GET /suggestions/{id}/revisions``."""
        ...

    async def interdiff(self, suggestion_id: str, *, start: int | None) -> JSON:
        """``GET /suggestions/{id}/interdiff?from=start`` (to the current revision)."""
        ...

    async def list_mine(self, *, status: str | None, after: str | None, limit: int) -> JSON:
        """The calling agent's suggestions, newest first: a page of ``GET /suggestions``
        (``{"items", "next_after", "head"}``)."""
        ...


def decision(suggestion: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The review a person gave to the suggestion's current revision, if any.

    A review of an earlier revision (or of another diff) does not count: after a
    revision the suggestion waits for a new decision.
    """
    reviews = suggestion.get("reviews") or []
    if not reviews:
        return None
    last: Mapping[str, Any] = reviews[-1]
    current = last.get("diff_hash") == suggestion.get("diff_hash") and last.get("revision", 0) in (
        0,  # given before storykit kept revisions: the diff hash alone says which
        suggestion.get("revision"),
    )
    return last if current else None


def settled(suggestion: Mapping[str, Any]) -> bool:
    """Nothing more to wait for: a person decided, policy blocked it (the agent acts next),
    or its source replaced it."""
    return decision(suggestion) is not None or suggestion.get("status") in ("blocked", "superseded")
