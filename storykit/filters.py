"""Which suggestions a list shows: one frozen value, parsed in one place.

Every host builds a :class:`SuggestionFilter` from what it was given (a query string,
the CLI's options, an MCP tool's arguments) with :meth:`SuggestionFilter.parse`, and
hands the value on unchanged: to the core, to the store (which turns it into a
``WHERE``), or to a server's query string (:meth:`SuggestionFilter.params`). So the
set of keywords is written here, and a new one is added here.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import TypeVar

from storykit._unicode import check_text
from storykit.errors import Invalid
from storykit.models import Risk, Status

__all__ = ["KEYS", "MAX_NAME", "SuggestionFilter"]

_E = TypeVar("_E", bound=enum.Enum)

MAX_NAME = 300
"""The longest ``source`` or ``agent`` a filter takes (a title's limit; names are shorter)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class SuggestionFilter:
    """Suggestions whose fields equal each one given here; None matches any."""

    status: Status | None = None
    source: str | None = None
    """The source that made it: a plugin's name, or ``api`` for an agent's submission."""
    agent: str | None = None
    """Who proposed it: a key's name, or ``source:<name>``."""
    risk: Risk | None = None

    @classmethod
    def parse(cls, values: Mapping[str, object]) -> SuggestionFilter:
        """The filter ``values`` ask for: a query string's or the CLI's options.

        Only :data:`KEYS` are read (paging options and the like beside them are the
        caller's); a key that is missing, None or empty is not a condition. A bad
        value is :class:`~storykit.errors.Invalid`, naming the key.
        """

        def given(key: str) -> object:
            value = values.get(key)
            return None if value is None or value == "" else value

        return cls(
            status=_member(Status, given("status"), "status"),
            source=_name(given("source"), "source"),
            agent=_name(given("agent"), "agent"),
            risk=_member(Risk, given("risk"), "risk"),
        )

    def params(self) -> dict[str, str]:
        """The conditions as strings, by key: a query string, the store's columns."""
        out: dict[str, str] = {}
        for key in KEYS:
            value = getattr(self, key)
            if value is not None:
                out[key] = value.value if isinstance(value, enum.Enum) else str(value)
        return out


KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SuggestionFilter))
"""The filter's keywords, in order: the query-string keys and the CLI's options."""


def _member(kind: type[_E], value: object, key: str) -> _E | None:
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise Invalid(f"{key} {value!r} is not one of: {allowed}") from None


def _name(value: object, key: str) -> str | None:
    return None if value is None else check_text(value, key, MAX_NAME)
