"""SSE tickets: short-lived, single-use stand-ins for a key in an ``/events`` URL.

SPEC §8: a ticket made on one replica is redeemed once on any, so tickets live in
the shared database, never in one process. The database keeps only a SHA-256 of
each ticket (a leaked table opens no stream), who it was made for, and its expiry
by the database's own clock (every replica agrees on it). Redeeming deletes the row
in the same statement that reads it (``DELETE … RETURNING``), so of two replicas
redeeming one ticket at once exactly one gets it. Expired tickets are purged each
time one is issued.
"""

from __future__ import annotations

import hashlib
import secrets

from storykit.auth import Principal, Role

__all__ = ["TICKET_TTL", "digest", "new_ticket", "principal"]

TICKET_TTL = 60.0
_PREFIX = "tk_"


def new_ticket() -> str:
    return _PREFIX + secrets.token_urlsafe(24)


def digest(ticket: str) -> str:
    """What the database keeps of a ticket."""
    return hashlib.sha256(ticket.encode("utf-8", "surrogatepass")).hexdigest()


def principal(name: object, role: object) -> Principal | None:
    """The principal a stored row names (None if its role is no longer one)."""
    try:
        return Principal(name=str(name), role=Role(str(role)))
    except ValueError:
        return None
