"""API keys: parsing ``API_TOKENS``, roles, and constant-time lookup.

A key never appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from enum import StrEnum

from storykit.errors import Forbidden, Unauthorized

__all__ = [
    "NAME_PATTERN",
    "ApiKey",
    "KeyRing",
    "Principal",
    "Role",
    "generate_key",
    "parse_api_tokens",
]


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


#: What a key's name may look like (``storykit keys new`` checks names against it too).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
# Printable ASCII but for the separators: anything else in a key is a mistake (a
# missing comma, a pasted space), and some of it cannot even travel in a header.
_KEY = re.compile(r"[!-+\--9;<>-~]+")
_ROLE_WORD = re.compile(r"[A-Za-z]{1,20}")


def parse_api_tokens(raw: str) -> tuple[ApiKey, ...]:
    """Parse ``API_TOKENS``: comma-separated ``name:role=key`` entries or bare keys (admin).

    A bare key has no ``=`` or ``:``; an entry with either must be a well-formed
    ``name:role=key``, so a mistyped entry is refused instead of becoming an admin key.
    Errors name the entry by position and never show the key, or anything that may
    be part of it.
    """
    keys: list[ApiKey] = []
    names: set[str] = set()
    for position, entry in enumerate((e.strip() for e in raw.split(",")), start=1):
        if not entry:
            continue
        if "=" not in entry and ":" not in entry:
            key, name, role = entry, _name_for(entry), Role.ADMIN
        else:
            head, _, key = entry.partition("=")
            if "=" not in entry or head.count(":") != 1:
                swapped = "=" in entry and ":" in entry and entry.index("=") < entry.index(":")
                raise ValueError(
                    f"entry {position} is not name:role=key"
                    + (" (':' and '=' look swapped)" if swapped else "")
                    + "; a bare key (an admin) has no '=' or ':'; write entries like"
                    " alice:reviewer=KEY"
                )
            name, role_text = (part.strip() for part in head.split(":"))
            key = key.strip()
            if not name:
                raise ValueError(f"entry {position} has an empty name")
            if not NAME_PATTERN.fullmatch(name):
                raise ValueError(
                    f"entry {position} has a name storykit cannot use; use letters, digits"
                    " and . _ @ - (at most 64)"
                )
            try:
                role = Role(role_text.lower())
            except ValueError:
                shown = f" {role_text!r}" if _ROLE_WORD.fullmatch(role_text) else ""
                raise ValueError(
                    f"entry {position} has an unknown role{shown}; use agent, reviewer or admin"
                ) from None
        who = f"entry {position} ({name!r})"
        if not _KEY.fullmatch(key):
            raise ValueError(
                f"{who}: the key holds a space, a control character, '=' or ':' (a missing"
                " comma between entries?); keys are printable ASCII without those"
            )
        if len(key) < 8:
            raise ValueError(f"{who}: a key needs at least 8 characters")
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
