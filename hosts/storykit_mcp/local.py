"""The gateway on the core in this process: ``/mcp`` in the web host, ``storykit mcp`` on
the local data directory. The principal is the caller's key (or, for a local stdio run,
an agent named after the OS user); the core enforces what it may do."""

from __future__ import annotations

import anyio

from storykit import replies
from storykit.auth import Principal
from storykit.events import Gap
from storykit.filters import SuggestionFilter
from storykit.models import to_dict
from storykit.services import Storykit
from storykit_mcp.gateway import JSON, MAX_WAIT, settled

__all__ = ["CoreGateway"]


class CoreGateway:
    def __init__(
        self,
        core: Storykit,
        actor: Principal,
        *,
        stops: set[anyio.CancelScope] | None = None,
    ) -> None:
        self.core = core
        self.actor = actor
        # The web host cancels these at shutdown, so a wait ends at once (as ``pending``)
        # instead of holding the server's graceful stop.
        self._stops = stops if stops is not None else set()

    async def check_diff(
        self, *, diff: str, title: str, rationale: str, base_ref: str = "HEAD"
    ) -> JSON:
        decision = await self.core.check_diff(
            diff=diff,
            title=title,
            rationale=rationale,
            agent=self.actor.name,
            base_ref=base_ref,
        )
        return to_dict(decision)

    async def submit(
        self,
        *,
        title: str,
        diff: str,
        rationale: str,
        base_ref: str,
        idempotency_key: str | None,
    ) -> JSON:
        suggestion = await self.core.submit(
            self.actor,
            title=title,
            diff=diff,
            rationale=rationale,
            base_ref=base_ref,
            idempotency_key=idempotency_key,
        )
        return to_dict(suggestion)

    async def get_suggestion(self, suggestion_id: str) -> JSON:
        return to_dict(await self.core.get_suggestion(suggestion_id))

    async def wait_for_review(self, suggestion_id: str, *, seconds: float) -> JSON:
        # Subscribe before reading, so a decision made in between wakes the wait.
        async with self.core.bus.subscribe() as events:
            current = to_dict(await self.core.get_suggestion(suggestion_id))
            with anyio.move_on_after(min(seconds, MAX_WAIT)) as scope:
                self._stops.add(scope)
                try:
                    while not settled(current):
                        try:
                            item = await anext(events)
                        except StopAsyncIteration:  # the bus closed: the server is stopping
                            break
                        # A gap may have held this suggestion's event: read it again.
                        if isinstance(item, Gap) or item.data.get("id") == current["id"]:
                            current = to_dict(await self.core.get_suggestion(suggestion_id))
                finally:
                    self._stops.discard(scope)
        return current

    async def revise(self, suggestion_id: str, *, diff: str, rationale: str | None) -> JSON:
        revised = await self.core.revise(self.actor, suggestion_id, diff=diff, rationale=rationale)
        return to_dict(revised)

    async def list_revisions(self, suggestion_id: str) -> JSON:
        return replies.revisions_reply(await self.core.list_revisions(suggestion_id))

    async def interdiff(self, suggestion_id: str, *, start: int | None) -> JSON:
        return await self.core.interdiff(suggestion_id, start=start)

    async def list_mine(self, *, status: str | None, after: str | None, limit: int) -> JSON:
        where = SuggestionFilter.parse({"agent": self.actor.name, "status": status})
        return await replies.suggestion_page(self.core, where, after=after, limit=limit)
