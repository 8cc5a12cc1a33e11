"""Idempotency keys: a retried submit returns the first result and writes nothing new.

SPEC §4: ``POST /suggestions`` and ``POST /suggestions/{id}/revisions`` honour an
``Idempotency-Key``. A key is scoped to the agent and the route; it is stored with
a hash of the request and the suggestion as the first request returned it, in the
same transaction as that suggestion (a unique key in the database, so two
concurrent requests with one key cannot both create). A retry with the same key
and request gets that first result back; the same key with a different request is
refused with :class:`~storykit.errors.Invalid`. A request that failed stored
nothing, key included, so its retry runs afresh. Keys are kept as long as the
database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Protocol

from storykit.auth import Principal
from storykit.errors import Invalid
from storykit.models import Suggestion, to_dict

__all__ = [
    "REVISE",
    "SUBMIT",
    "IdempotentRequest",
    "IdempotentResult",
    "KeyStore",
    "replay",
    "request",
    "winner",
]

#: The routes that honour a key (a key is scoped to the agent and one of these).
SUBMIT = "POST /suggestions"
REVISE = "POST /suggestions/{id}/revisions"

MAX_KEY = 255
_KEY = re.compile(r"[!-~]+")  # printable ASCII, as any header value can carry


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class IdempotentResult:
    """What one key produced: the row the store keeps."""

    agent: str
    route: str
    key: str
    request_hash: str
    suggestion_id: str
    response: Mapping[str, Any]
    """The suggestion as the first request returned it (``to_dict``)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class IdempotentRequest:
    """A request that came with a key: who, which route, and a hash of what it asked."""

    agent: str
    route: str
    key: str
    request_hash: str

    def result(self, suggestion: Suggestion) -> IdempotentResult:
        return IdempotentResult(
            agent=self.agent,
            route=self.route,
            key=self.key,
            request_hash=self.request_hash,
            suggestion_id=suggestion.id,
            response=to_dict(suggestion),
        )


class KeyStore(Protocol):
    async def get_idempotent(self, agent: str, route: str, key: str) -> IdempotentResult | None:
        """The result stored for this key, or None."""


def request(
    actor: Principal, route: str, key: str | None, fields: Mapping[str, Any]
) -> IdempotentRequest | None:
    """The request ``key`` names (None without a key); :class:`Invalid` for a bad key."""
    if key is None:
        return None
    if not isinstance(key, str) or len(key) > MAX_KEY or not _KEY.fullmatch(key):
        raise Invalid(
            f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters without"
            " spaces (a UUID, say)"
        )
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return IdempotentRequest(
        agent=actor.name,
        route=route,
        key=key,
        request_hash=hashlib.sha256(canonical.encode()).hexdigest(),
    )


async def replay(store: KeyStore, once: IdempotentRequest | None) -> Suggestion | None:
    """The first result for this key, or None if the key is new.

    :class:`Invalid` when the key was used for a different request.
    """
    if once is None:
        return None
    first = await store.get_idempotent(once.agent, once.route, once.key)
    if first is None:
        return None
    if first.request_hash != once.request_hash:
        raise Invalid(
            f"the Idempotency-Key {once.key!r} was already used for a different request"
            f" ({once.route}); send a new key for a new request"
        )
    return Suggestion.from_dict(dict(first.response))


async def winner(store: KeyStore, once: IdempotentRequest | None, error: Exception) -> Suggestion:
    """A write with a key failed: the result of the request with that key that won the
    race (two retries at once, say), else ``error`` raised again."""
    first = await replay(store, once)
    if first is None:
        raise error
    return first
