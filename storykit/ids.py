"""Sortable, file-name-safe identifiers.

An id is ``<prefix>_<26 chars>``: 48 bits of milliseconds since the epoch and 80
random bits in Crockford base32 (the ULID layout), so ids sort by creation time,
never collide in practice, and contain nothing a path could be built from.
"""

from __future__ import annotations

import os
import re
import time

from storykit.errors import Invalid

__all__ = ["check_id", "new_id"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID_RE = re.compile(r"\A[a-z]{1,8}_[0-9A-HJKMNP-TV-Z]{26}\Z")


_last = 0  # the last value made in this process (ids from one process sort in creation order)


def new_id(prefix: str) -> str:
    """A new id such as ``sug_01JDZ7Q0V8M4W2K6T3R9X5C1B0``.

    Within one millisecond (or if the clock steps back) the next id is the last one
    plus one, as monotonic ULIDs do, so ids made here sort in the order they were made.
    """
    global _last
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    if value >> 80 <= _last >> 80:
        value = _last + 1
    _last = value
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


def check_id(value: object, prefix: str | None = None, *, what: str = "id") -> str:
    """Return ``value`` if it is a well-formed id (with ``prefix``), else raise :class:`Invalid`."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise Invalid(f"{what} {value!r} is not a storykit id")
    if prefix is not None and not value.startswith(prefix + "_"):
        raise Invalid(f"{what} {value!r} is not a {prefix}_… id")
    return value
