"""API keys: parsing ``API_TOKENS``, roles, and constant-time lookup.

A key never appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from enum import StrEnum

from storykit.errors import Forbidden, Unauthorized

__all__ = ["ApiKey", "KeyRing", "Principal", "Role", "generate_key", "parse_api_tokens"]


class Role(StrEnum):
    AGENT = "agent"
    REVIEWER = "reviewer"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        return _RANK[self] >= _RANK[needed]


_RANK = {Role.AGENT: 0, Role.REVIEWER: 1, Role.ADMIN: 2}
TEST_KEYS = ("test", "test-token")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Principal:
    """Who is calling: the key's name (the identity for limits and the audit trail) and role."""

    name: str
    role: Role

    def require(self, needed: Role) -> None:
        if not self.role.allows(needed):
            raise Forbidden(f"this needs the {needed} role; key {self.name!r} is {self.role}")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ApiKey:
    name: str
    role: Role
    digest: bytes = dataclasses.field(repr=False)
    """SHA-256 of the key: the key itself is not kept."""

    @property
    def principal(self) -> Principal:
        return Principal(name=self.name, role=self.role)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _name_for(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def parse_api_tokens(raw: str) -> tuple[ApiKey, ...]:
    """Parse ``API_TOKENS``: comma-separated ``name:role=key`` entries or bare keys (admin)."""
    keys: list[ApiKey] = []
    names: set[str] = set()
    for position, entry in enumerate((e.strip() for e in raw.split(",")), start=1):
        if not entry:
            continue
        if "=" in entry and ":" in entry.split("=", 1)[0]:
            head, key = entry.split("=", 1)
            name, role_text = (part.strip() for part in head.split(":", 1))
            try:
                role = Role(role_text.lower())
            except ValueError:
                raise ValueError(
                    f"entry {position} has role {role_text!r}; use agent, reviewer or admin"
                ) from None
            if not name:
                raise ValueError(f"entry {position} has an empty name")
        else:
            key, name, role = entry, _name_for(entry), Role.ADMIN
        key = key.strip()
        if len(key) < 8:
            raise ValueError(f"entry {position} ({name!r}): a key needs at least 8 characters")
        if name in names:
            raise ValueError(f"the name {name!r} is used twice")
        names.add(name)
        keys.append(ApiKey(name=name, role=role, digest=_digest(key)))
    return tuple(keys)


def generate_key() -> str:
    """A new random key (URL-safe, 256 bits)."""
    return "sk_" + secrets.token_urlsafe(32)


class KeyRing:
    """Looks a presented key up in constant time (with respect to the key's content)."""

    def __init__(self, keys: tuple[ApiKey, ...], *, test_mode: bool = False) -> None:
        self._keys = keys
        extra = (
            tuple(ApiKey(name=k, role=Role.ADMIN, digest=_digest(k)) for k in TEST_KEYS)
            if test_mode
            else ()
        )
        self._all = keys + extra

    def __len__(self) -> int:
        return len(self._all)

    def lookup(self, presented: str | None) -> Principal:
        """The principal for ``presented``, or raise :class:`Unauthorized`."""
        if not presented:
            raise Unauthorized("missing API key: send it in the X-API-Key header")
        digest = _digest(presented)
        found: ApiKey | None = None
        # Compare against every key, always, so timing says nothing about which matched.
        for key in self._all:
            if hmac.compare_digest(digest, key.digest):
                found = key
        if found is None:
            raise Unauthorized("unknown API key")
        return found.principal
