"""Helpers the policies share: reading their configuration and keeping the event loop free."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar, cast

import anyio.to_thread
import re2

from storykit.diffs import ParsedDiff, parse_diff
from storykit.errors import Invalid
from storykit.models import Outcome

__all__ = [
    "MAX_FINDINGS_PER_RULE",
    "OFFLOAD_BYTES",
    "canonical",
    "in_thread",
    "offload",
    "optional_limit",
    "optional_severity",
    "parsed",
    "section",
    "set_hits",
    "severity",
    "string_list",
]

T = TypeVar("T")

OFFLOAD_BYTES = 64 * 1024
"""Above this many characters of input, CPU-bound work runs in a worker thread.

Below it the work takes well under a millisecond, less than the hop to a thread."""

MAX_FINDINGS_PER_RULE = 100
"""A diff full of matches should not turn into a decision too large to store or read."""


async def offload(size: int, fn: Callable[[], T]) -> T:
    """Run ``fn`` inline for small inputs, else in a worker thread.

    ``abandon_on_cancel``: the core cancels a policy that runs past its timeout; the
    thread then finishes in the background (RE2 and regorus cannot be interrupted)
    but the event loop and the suggestion move on.
    """
    if size <= OFFLOAD_BYTES:
        return fn()
    return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)


async def in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a worker thread whatever its size (see :func:`offload`)."""
    return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)


def parsed(diff: str) -> ParsedDiff:
    """:func:`~storykit.diffs.parse_diff`, remembered for small diffs: the policies judging
    one diff (concurrently) share one parse of it. Treat the result as read-only."""
    if len(diff) <= OFFLOAD_BYTES:
        return _parsed_small(diff)
    return parse_diff(diff)


@functools.lru_cache(maxsize=32)
def _parsed_small(diff: str) -> ParsedDiff:
    return parse_diff(diff)


def set_hits(compiled: re2.Set, text: bytes) -> list[int]:
    """Indices of the patterns in ``compiled`` that match ``text``, in order."""
    # The google-re2 stubs declare ``bool | None``; the binding returns the indices.
    hits = cast("list[int] | None", compiled.Match(text))
    return sorted(hits) if hits else []


def canonical(config: Mapping[str, Any]) -> str:
    """A stable text form of a configuration, used as a cache key."""
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"the settings must be plain JSON: {exc}") from None


def section(
    config: object, allowed: Collection[str], *, where: str = "settings"
) -> Mapping[str, Any]:
    """``config`` as a mapping with only ``allowed`` keys; :class:`Invalid` names a stray key."""
    if not isinstance(config, Mapping):
        raise Invalid(f"{where} must be a JSON object, not {_kind(config)}")
    unknown = sorted(str(k) for k in config if k not in allowed)
    if unknown:
        raise Invalid(
            f"{where}: unknown key {unknown[0]!r} (expected one of {', '.join(sorted(allowed))})"
        )
    return config


def severity(value: object, where: str) -> Outcome:
    if value not in ("warn", "deny"):
        raise Invalid(f'{where} must be "warn" or "deny", not {json.dumps(value)}')
    return Outcome(str(value))


def optional_severity(value: object, where: str) -> Outcome | None:
    """A severity, or ``None`` for ``"off"``."""
    if value == "off":
        return None
    if value not in ("warn", "deny"):
        raise Invalid(f'{where} must be "warn", "deny" or "off", not {json.dumps(value)}')
    return Outcome(str(value))


def string_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"{where} must be a list of strings, not {json.dumps(value)}")
    return list(value)


def optional_limit(value: object, where: str) -> int | None:
    """A positive whole number, or ``None`` (JSON ``null``) for no limit."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise Invalid(f"{where} must be a whole number of at least 1, or null for no limit")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
