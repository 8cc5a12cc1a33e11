"""Text that can be stored: every string the core keeps must encode as UTF-8.

JSON lets a client send an unpaired surrogate (``"\\ud800"``) that Python decodes into a
``str`` no UTF-8 encoder accepts. Left alone it fails deep inside SQLite, as a
database error, for every write that shares its transaction; checked here, in the
caller's task, it is the caller's :class:`~storykit.errors.Invalid`.
"""

from __future__ import annotations

from collections.abc import Mapping

from storykit.errors import Invalid

__all__ = ["MAX_INT64", "check_text", "require_utf8", "require_utf8_json"]

MAX_INT64 = 2**63 - 1
"""The largest integer SQLite (and PostgreSQL's ``bigint``) can hold."""


def require_utf8(text: str, what: str) -> str:
    """``text`` if it encodes as UTF-8, else :class:`Invalid` naming ``what`` and where."""
    if text.isascii():  # the common case, without copying the text
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = text[exc.start]
        raise Invalid(
            f"{what} is not valid Unicode text: it holds an unpaired surrogate"
            f" (U+{ord(char):04X} at character {exc.start}); send UTF-8 text"
        ) from None
    return text


def check_text(value: object, what: str, limit: int) -> str:
    """``value`` if it is a string of at most ``limit`` characters that can be stored (no
    NUL, valid UTF-8), else :class:`Invalid` naming ``what``."""
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a string")
    if len(value) > limit:
        raise Invalid(f"{what} is too long ({len(value)} characters; the limit is {limit})")
    if "\x00" in value:
        raise Invalid(f"{what} contains a NUL character")
    return require_utf8(value, what)


def require_utf8_json(value: object, what: str) -> None:
    """Check every string in a JSON value, keys too; :class:`Invalid` names the first bad one."""
    stack: list[tuple[str, object]] = [(what, value)]
    while stack:  # not recursive: a deeply nested document must not overflow the stack
        where, item = stack.pop()
        if isinstance(item, str):
            require_utf8(item, where)
        elif isinstance(item, Mapping):
            for key, inner in reversed(list(item.items())):
                if isinstance(key, str):
                    require_utf8(key, f"a key in {where}")
                stack.append((f"{where}[{key!r}]", inner))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}[{i}]", inner) for i, inner in reversed(list(enumerate(item))))
