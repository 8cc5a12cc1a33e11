"""What the web host keeps per app: the core, keys, limiter, tickets, shutdown signal."""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio

from storykit.auth import KeyRing, Principal
from storykit.metrics import Metrics
from storykit.ratelimit import Limiter
from storykit.services import Storykit
from storykit.settings import Settings
from storykit.store import Store
from storykit.tickets import TICKET_TTL
from storykit_quart.logs import RequestWriter, request_logger, request_writer

__all__ = ["HostState", "Tickets"]


class Tickets:
    """Short-lived, single-use tickets that stand in for a key in an SSE URL.

    They live in the shared database (:mod:`storykit.tickets`): a ticket made on one
    replica is redeemed once, on any.
    """

    def __init__(self, store: Store | None = None, ttl: float = TICKET_TTL) -> None:
        self.ttl = ttl
        self._store = store

    def _require_store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the app is not serving yet")
        return self._store

    async def issue(self, principal: Principal) -> str:
        return await self._require_store().issue_ticket(principal, self.ttl)

    async def redeem(self, ticket: str) -> Principal | None:
        return await self._require_store().redeem_ticket(ticket)


@dataclasses.dataclass(kw_only=True)
class HostState:
    settings: Settings
    keys: KeyRing
    limiter: Limiter
    metrics: Metrics
    # Per app, made after the host configured logging: a module-level logger would stay
    # bound to whatever configuration was current at its first use.
    log: Any = dataclasses.field(default_factory=request_logger)
    request_line: RequestWriter | None = None
    """Writes one request's log line (:func:`~storykit_quart.logs.request_writer`)."""
    tickets: Tickets = dataclasses.field(default_factory=Tickets)
    core: Storykit | None = None
    streams: set[anyio.CancelScope] = dataclasses.field(default_factory=set)
    """Open SSE streams; cancelled at shutdown so they end at once."""

    def __post_init__(self) -> None:
        if self.request_line is None:
            self.request_line = request_writer(self.log)

    def end_streams(self) -> None:
        for scope in list(self.streams):
            scope.cancel()

    def require_core(self) -> Storykit:
        if self.core is None:
            raise RuntimeError("the app is not serving yet")
        return self.core
