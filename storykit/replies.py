"""The JSON replies every host sends, written once.

The web routes, the CLI's local client and the MCP host answer with exactly these
shapes (SPEC §4, §5), so the same question gets the same JSON whichever way it
came. The shapes are plain functions of the core's values; the three readers below
also fix the order in which a page and its ``head`` are read, which is what makes a
page's ``head`` safe to subscribe from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import storykit
from storykit.models import Event, Revision, to_dict

if TYPE_CHECKING:
    from storykit._review import BulkItem
    from storykit._suggestions import GenerateResult
    from storykit.filters import SuggestionFilter
    from storykit.services import Storykit

__all__ = [
    "JSON",
    "bulk_reply",
    "event_log",
    "event_page",
    "generate_reply",
    "page",
    "plan_page",
    "plugins_reply",
    "revisions_reply",
    "suggestion_page",
]

JSON = dict[str, Any]


class _Keyed(Protocol):
    @property
    def id(self) -> str: ...


def page(items: Sequence[_Keyed], *, limit: int, head: int) -> JSON:
    """A keyset page: ``next_after`` is the last id when the page is full (there may be
    more after it), else None; ``head`` the newest event id, read before the items."""
    return {
        "items": [to_dict(item) for item in items],
        "next_after": items[-1].id if len(items) == limit else None,
        "head": head,
    }


def event_page(events: Sequence[Event], *, after: int, head: int) -> JSON:
    """A page of the event log: ``last_id`` is where the next page starts (``after``
    when the page is empty); ``head`` the log's newest id, read after the page."""
    return {
        "items": [to_dict(e) for e in events],
        "last_id": events[-1].id if events else after,
        "head": head,
    }


def generate_reply(result: GenerateResult) -> JSON:
    """What ``POST /suggest/generate`` answers: the suggestions stored, how many proposals
    repeated an open suggestion (``unchanged``: not stored again), the ids marked
    superseded, and each source that failed with the reason."""
    return {
        "items": [to_dict(s) for s in result.suggestions],
        "count": len(result.suggestions),
        "unchanged": len(result.unchanged),
        "superseded": list(result.superseded),
        "errors": list(result.errors),
    }


def bulk_reply(items: Sequence[BulkItem]) -> JSON:
    """What a bulk decision answers: each suggestion's outcome, in the order asked, and
    how many were decided and refused."""
    return {
        "items": [to_dict(i) for i in items],
        "ok": sum(1 for i in items if i.ok),
        "refused": sum(1 for i in items if not i.ok),
    }


def revisions_reply(revisions: Sequence[Revision]) -> JSON:
    """A suggestion's revisions, oldest first."""
    return {"items": [to_dict(r) for r in revisions]}


def plugins_reply(core: Storykit) -> JSON:
    """Loaded plugins and their hooks, recent plugin errors (newest first), and the PR
    backend a real run uses."""
    return {
        "version": storykit.__version__,
        "plugins": core.plugins(),
        "errors": [to_dict(f) for f in reversed(core.registry.failures)],
        "pr_backend": core.settings.pr_backend,
    }


async def suggestion_page(
    core: Storykit, where: SuggestionFilter | None, *, after: str | None, limit: int
) -> JSON:
    """A page of suggestions, newest first, with the ``head`` to subscribe from."""
    head = await core.event_head()  # first: a change after it has a newer event
    items = await core.list_suggestions(where, after=after, limit=limit)
    return page(items, limit=limit, head=head)


async def plan_page(core: Storykit, *, after: str | None, limit: int) -> JSON:
    """A page of plans, newest first, with the ``head`` to subscribe from."""
    head = await core.event_head()  # first, as for suggestions
    items = await core.list_plans(after=after, limit=limit)
    return page(items, limit=limit, head=head)


async def event_log(core: Storykit, *, after: int, limit: int) -> JSON:
    """Stored events with ``id > after``, oldest first, and the log's ``head``."""
    events = await core.read_events(after=after, limit=limit)
    # After the page, so no item is above it.
    return event_page(events, after=after, head=await core.event_head())
