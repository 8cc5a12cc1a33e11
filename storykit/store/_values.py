"""Checks of the numbers every store passes to its database: SQLite's and PostgreSQL's
integers are 64-bit, and a larger Python int fails inside the driver, not as bad input."""

from __future__ import annotations

from storykit._unicode import MAX_INT64
from storykit.errors import Invalid

__all__ = ["event_id", "limit"]


def limit(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_INT64:
        raise Invalid(f"limit must be a whole number from 1 to {MAX_INT64}, not {value!r}")
    return value


def event_id(after: int) -> int:
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_INT64:
        raise Invalid(f"after must be an event id from 0 to {MAX_INT64}, not {after!r}")
    return after
