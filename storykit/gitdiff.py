"""Writing git-style unified diffs from known edits.

``difflib`` would have to compare whole files to rediscover changes we already
know the position of; with thousands of fixes over a large repository that is
the slow part. Here the caller says which character ranges changed and only the
lines around them are compared.

Lines are split on ``"\\n"`` only, as git does: a lone ``"\\r"`` or a form feed
is part of a line, not the end of one.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import itertools
from collections.abc import Mapping, Sequence

__all__ = [
    "Change",
    "Edit",
    "Lines",
    "Region",
    "apply_edits",
    "blob_id",
    "file_diff",
    "format_hunks",
    "header",
    "plain_path",
]

CONTEXT = 3
NO_EOL = "\\ No newline at end of file\n"


@dataclasses.dataclass(frozen=True, slots=True)
class Edit:
    """Replace ``old[start:end]`` (character offsets) with ``content``."""

    start: int
    end: int
    content: str


@dataclasses.dataclass(frozen=True, slots=True)
class Region:
    """Where an applied edit sits: ``old[old_start:old_end]`` became ``new[new_start:new_end]``."""

    old_start: int
    old_end: int
    new_start: int
    new_end: int


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """Lines ``old[start:start+len(removed)]`` (0-based) are replaced by ``added``.

    Every line keeps its ``"\\n"``; a line without one is the file's unterminated last line.
    """

    start: int
    removed: tuple[str, ...]
    added: tuple[str, ...]

    @property
    def end(self) -> int:
        return self.start + len(self.removed)


def apply_edits(old: str, edits: Sequence[Edit]) -> tuple[str, list[Region]]:
    """Apply sorted, non-overlapping ``edits``; return the new text and where each landed."""
    parts: list[str] = []
    regions: list[Region] = []
    pos = 0
    size = 0
    for edit in edits:
        if edit.start < pos or edit.end < edit.start:
            raise ValueError("edits must be sorted and must not overlap")
        parts.append(old[pos : edit.start])
        size += edit.start - pos
        parts.append(edit.content)
        regions.append(Region(edit.start, edit.end, size, size + len(edit.content)))
        size += len(edit.content)
        pos = edit.end
    parts.append(old[pos:])
    return "".join(parts), regions


class Lines:
    """A text split into git lines once, for the many diffs made against it."""

    __slots__ = ("lines", "starts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = _split(text)
        # Offsets where lines start, plus len(text) when the text ends with "\n" (the
        # empty line an insertion at the very end goes to).
        self.starts = list(itertools.accumulate(map(len, self.lines), initial=0))
        if text and not text.endswith("\n"):
            self.starts.pop()


def _split(text: str) -> list[str]:
    """Lines with their ``"\\n"`` (a final line without one is kept as it is)."""
    # str.splitlines is much faster, but also ends lines at "\r", "\f" and others:
    # use it when the count shows that it found only the "\n" ends.
    fast = text.splitlines(keepends=True)
    if len(fast) == text.count("\n") + (not text.endswith("\n") and bool(text)):
        return fast
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def file_diff(base: Lines, new: str, regions: Sequence[Region], *, context: int = CONTEXT) -> str:
    """The hunks (``@@`` onwards) that turn ``base`` into ``new``, given where they differ."""
    old, starts, old_lines = base.text, base.starts, base.lines
    changes: list[Change] = []
    delta = 0  # how much longer ``new`` is than ``old`` before the current group
    i = 0
    while i < len(regions):
        # Regions on the same or neighbouring lines are one block, as git would show them.
        first = bisect.bisect_right(starts, regions[i].old_start) - 1
        last = _last_line(starts, regions[i])
        group_delta = _delta(regions[i])
        j = i + 1
        while (
            j < len(regions) and bisect.bisect_right(starts, regions[j].old_start) - 1 <= last + 1
        ):
            last = max(last, _last_line(starts, regions[j]))
            group_delta += _delta(regions[j])
            j += 1
        block_start = starts[first]
        block_end = starts[last + 1] if last + 1 < len(starts) else len(old)
        removed = old_lines[first : last + 1]
        added = _split(new[block_start + delta : block_end + delta + group_delta])
        changes.extend(_trimmed(first, removed, added))
        delta += group_delta
        i = j
    return format_hunks(old_lines, changes, context=context)


def _delta(region: Region) -> int:
    return (region.new_end - region.new_start) - (region.old_end - region.old_start)


def _last_line(starts: list[int], region: Region) -> int:
    end = max(region.old_end - 1, region.old_start)
    return bisect.bisect_right(starts, end) - 1


def _trimmed(first: int, removed: list[str], added: list[str]) -> list[Change]:
    """Drop the lines a block starts and ends with that did not change."""
    head = 0
    while head < min(len(removed), len(added)) and removed[head] == added[head]:
        head += 1
    tail = 0
    while (
        tail < min(len(removed), len(added)) - head
        and removed[len(removed) - 1 - tail] == added[len(added) - 1 - tail]
    ):
        tail += 1
    old_part = tuple(removed[head : len(removed) - tail])
    new_part = tuple(added[head : len(added) - tail])
    if not old_part and not new_part:
        return []
    return [Change(first + head, old_part, new_part)]


def format_hunks(
    old_lines: Sequence[str] | Mapping[int, str],
    changes: Sequence[Change],
    *,
    context: int = CONTEXT,
) -> str:
    """Hunks for sorted, non-overlapping ``changes`` to a file whose lines are ``old_lines``.

    ``old_lines`` may be a mapping of only the lines known (line index → text); context
    then stops at the first unknown line, which is how a planner merges hunks it only
    has from diffs.
    """
    known = old_lines
    size = len(known)
    sparse = isinstance(known, Mapping)

    def has(n: int) -> bool:
        return n in known if sparse else 0 <= n < size

    def reach(start: int, step: int) -> int:
        n = 0
        while n < context and has(start + step * n):
            n += 1
        return n

    out: list[str] = []
    shift = 0  # new line number minus old line number before the current hunk
    i = 0
    while i < len(changes):
        lo = changes[i].start - reach(changes[i].start - 1, -1)
        j = i
        hi = changes[j].end + reach(changes[j].end, 1)
        while j + 1 < len(changes):
            nxt = changes[j + 1]
            if nxt.start - reach(nxt.start - 1, -1) > hi:
                break
            j += 1
            hi = nxt.end + reach(nxt.end, 1)
        body: list[str] = []
        pos = lo
        added_total = 0
        for change in changes[i : j + 1]:
            body.extend(_line(" ", known[n]) for n in range(pos, change.start))
            body.extend(_line("-", line) for line in change.removed)
            body.extend(_line("+", line) for line in change.added)
            added_total += len(change.added) - len(change.removed)
            pos = change.end
        body.extend(_line(" ", known[n]) for n in range(pos, hi))
        old_count = hi - lo
        new_count = old_count + added_total
        out.append(
            f"@@ -{_range(lo, old_count)} +{_range(lo + shift, new_count)} @@\n" + "".join(body)
        )
        shift += added_total
        i = j + 1
    return "".join(out)


def _range(start: int, count: int) -> str:
    # An empty range names the line before it, as diff and git do.
    return f"{start + 1 if count else start},{count}"


def _line(prefix: str, text: str) -> str:
    return prefix + text if text.endswith("\n") else prefix + text + "\n" + NO_EOL


def header(path: str, *, index: str | None = None) -> str:
    """``diff --git`` headers for a modified file (no rename, same mode)."""
    # git ends a name that contains a space with a tab so that ``patch`` reads it whole.
    tab = "\t" if " " in path else ""
    index_line = f"index {index}\n" if index else ""
    return f"diff --git a/{path} b/{path}\n{index_line}--- a/{path}{tab}\n+++ b/{path}{tab}\n"


def blob_id(data: bytes, algorithm: str = "sha1") -> str:
    """The object id git gives a blob with these contents."""
    digest = hashlib.new(algorithm)
    digest.update(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


def plain_path(path: str) -> bool:
    """Whether ``path`` can appear in a diff header without git's C-style quoting."""
    return not any(c in path for c in '"\\') and all(c >= " " and c != "\x7f" for c in path)
