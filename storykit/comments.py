"""Line comments: reading them from a request, checking them against the reviewed diff,
and carrying them over to a new revision.

A comment is anchored to a file, a line and a side of the diff it was given on, and
only to a line that diff shows on that side (an added or context line on ``new``, a
removed or context line on ``old``): what a reviewer can point at. When a later
revision changes that line, the comment stays with its review, marked ``outdated``;
until then ``current_line`` says where the line is now (:func:`carry`).

Pure functions, no I/O: tests/core/test_comments.py checks them as tables.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from storykit._unicode import check_text
from storykit.diffs import parse_diff
from storykit.errors import Invalid
from storykit.interdiff import map_line
from storykit.models import LineComment, Review, Side

__all__ = ["MAX_BODY", "MAX_COMMENTS", "anchor", "carry", "parse", "shown_lines"]

MAX_COMMENTS = 200
"""The most line comments one review may carry."""
MAX_BODY = 20_000
"""The longest one comment may be (an overall comment's limit)."""


def parse(raw: object) -> tuple[LineComment, ...]:
    """Line comments from a request: a list of ``{"file", "line", "side"?, "body"}``
    (or :class:`LineComment` values). Shapes only; :func:`anchor` checks the lines."""
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise Invalid("comments must be a list of {file, line, side, body}")
    if len(raw) > MAX_COMMENTS:
        raise Invalid(f"a review takes at most {MAX_COMMENTS} line comments, not {len(raw)}")
    out: list[LineComment] = []
    for n, item in enumerate(raw, start=1):
        if isinstance(item, LineComment):
            item = {"file": item.file, "line": item.line, "side": item.side, "body": item.body}
        if not isinstance(item, Mapping):
            raise Invalid(f"comment {n} must be an object with file, line, side and body")
        unknown = sorted(set(item) - {"file", "line", "side", "body"})
        if unknown:
            raise Invalid(f"comment {n}: unknown key(s) {', '.join(unknown)}")
        line = item.get("line")
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise Invalid(f"comment {n}: line must be a line number from 1, not {line!r}")
        side = item.get("side", "new")
        if side not in ("old", "new"):
            raise Invalid(f"comment {n}: side must be 'old' or 'new', not {side!r}")
        file = check_text(item.get("file"), f"comment {n}: file", 1000)
        body = check_text(item.get("body"), f"comment {n}: body", MAX_BODY)
        if not file:
            raise Invalid(f"comment {n}: file is required")
        if not body.strip():
            raise Invalid(f"comment {n}: body is required (what to say about the line)")
        out.append(LineComment(file=file, line=line, side=Side(side), body=body, current_line=line))
    return tuple(out)


def shown_lines(diff: str) -> dict[tuple[str, Side], frozenset[int]]:
    """The line numbers each file's patch shows, by file and side."""
    parsed = parse_diff(diff)
    shown: dict[tuple[str, Side], set[int]] = {}
    for patched, change in zip(parsed.patch, parsed.changes, strict=True):
        old = shown.setdefault((change.path, Side.OLD), set())
        new = shown.setdefault((change.path, Side.NEW), set())
        for hunk in patched:
            for line in hunk:
                if line.source_line_no is not None:
                    old.add(line.source_line_no)
                if line.target_line_no is not None:
                    new.add(line.target_line_no)
    return {key: frozenset(lines) for key, lines in shown.items()}


def anchor(comments: Sequence[LineComment], diff: str) -> None:
    """Raise :class:`~storykit.errors.Invalid` unless every comment's line is one ``diff``
    shows on its side, naming the first that is not and what the diff does show."""
    if not comments:
        return
    shown = shown_lines(diff)
    files = sorted({path for path, _ in shown})
    for n, c in enumerate(comments, start=1):
        lines = shown.get((c.file, c.side))
        if lines is None:
            raise Invalid(
                f"comment {n}: the diff does not change {c.file!r}; its files are"
                f" {', '.join(map(repr, files))}"
            )
        if c.line not in lines:
            raise Invalid(
                f"comment {n}: line {c.line} of {c.file} is not in the diff on the {c.side}"
                f" side; the {c.side} side shows lines {_ranges(lines) or 'none'}"
            )


def carry(reviews: Sequence[Review], old: str, new: str) -> tuple[Review, ...]:
    """``reviews`` as they read once diff ``new`` replaces ``old``: each comment that was
    current gets its line in ``new``, or is marked outdated if ``new`` changed it."""
    out: list[Review] = []
    for review in reviews:
        if not any(not c.outdated for c in review.comments):
            out.append(review)
            continue
        carried = []
        for c in review.comments:
            if c.outdated:
                carried.append(c)
                continue
            try:
                where = map_line(old, new, file=c.file, side=c.side, line=c.current_line or c.line)
            except Invalid:  # made against another version of the file: nothing lines up
                where = None
            carried.append(dataclasses.replace(c, outdated=where is None, current_line=where))
        out.append(dataclasses.replace(review, comments=tuple(carried)))
    return tuple(out)


def _ranges(lines: frozenset[int]) -> str:
    """``1-4, 9, 12-15``."""
    parts: list[str] = []
    ordered = sorted(lines)
    start = prev = ordered[0] if ordered else 0
    for n in ordered[1:]:
        if n != prev + 1:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = n
        prev = n
    if ordered:
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(parts)
