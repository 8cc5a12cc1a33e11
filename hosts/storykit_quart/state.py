"""What the web host keeps per app: the core, keys, limiter, tickets, shutdown signal."""

from __future__ import annotations

import dataclasses
import secrets
import time
from typing import Any

import anyio

from storykit.auth import KeyRing, Principal
from storykit.metrics import Metrics
from storykit.ratelimit import RateLimiter
from storykit.services import Storykit
from storykit.settings import Settings
from storykit_quart.logs import request_logger

__all__ = ["HostState", "Tickets"]

TICKET_TTL = 60.0


class Tickets:
    """Short-lived, single-use tickets that stand in for a key in an SSE URL."""

    def __init__(self, ttl: float = TICKET_TTL) -> None:
        self.ttl = ttl
        self._tickets: dict[str, tuple[Principal, float]] = {}

    def issue(self, principal: Principal) -> str:
        now = time.monotonic()
        # Drop expired ones so the table stays as small as the tickets in flight.
        self._tickets = {t: v for t, v in self._tickets.items() if v[1] > now}
        ticket = "tk_" + secrets.token_urlsafe(24)
        self._tickets[ticket] = (principal, now + self.ttl)
        return ticket

    def redeem(self, ticket: str) -> Principal | None:
        entry = self._tickets.pop(ticket, None)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]


@dataclasses.dataclass(kw_only=True)
class HostState:
    settings: Settings
    keys: KeyRing
    limiter: RateLimiter
    metrics: Metrics
    # Per app, made after the host configured logging: a module-level logger would stay
    # bound to whatever configuration was current at its first use.
    log: Any = dataclasses.field(default_factory=request_logger)
    tickets: Tickets = dataclasses.field(default_factory=Tickets)
    core: Storykit | None = None
    streams: set[anyio.CancelScope] = dataclasses.field(default_factory=set)
    """Open SSE streams; cancelled at shutdown so they end at once."""

    def end_streams(self) -> None:
        for scope in list(self.streams):
            scope.cancel()

    def require_core(self) -> Storykit:
        if self.core is None:
            raise RuntimeError("the app is not serving yet")
        return self.core
