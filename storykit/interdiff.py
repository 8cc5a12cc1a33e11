"""What changed between two revisions of a suggestion: the diff between the file contents
each one produces, and where a line of one is in the other.

Both revisions are diffs against the same base (a suggestion keeps its ``base_ref``).
Each shows some lines of the base (context and removed lines) and says how it changes
them; a base line neither shows is one both leave alone. So the two results can be
compared without reading the base from git: each run of lines no diff shows stands in
as one opaque token, equal on both sides, and every line that differs is one of the
diffs' own. The result is exact for what changed and for every line number; its context
lines are those one of the diffs showed (docs/decisions/0017-revisions-and-interdiff.md).

Pure functions, no I/O: tests/core/test_interdiff.py checks them as tables.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
from collections.abc import Sequence

from storykit.combine import FilePatch, file_patches
from storykit.errors import Invalid
from storykit.gitdiff import Change, format_hunks, header
from storykit.models import Side

__all__ = ["Interdiff", "interdiff", "map_line"]


@dataclasses.dataclass(frozen=True, slots=True)
class _Gap:
    """Base lines ``[start, start + length)``: shown by neither diff, so the same in both."""

    start: int
    length: int


_Token = str | _Gap


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Interdiff:
    diff: str
    """A unified diff from the first revision's files to the second's (empty: no change)."""
    files: tuple[str, ...]
    """The files whose contents differ, in the order of ``diff``."""
    notes: tuple[str, ...] = ()
    """Files compared only as patches (binary, or patched twice in one diff), for people."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Pair:
    """One file as two revisions leave it, split at the gaps (which both share)."""

    a: list[list[str]]
    b: list[list[str]]
    gaps: list[_Gap]
    a_changes: tuple[Change, ...]
    b_changes: tuple[Change, ...]


def interdiff(old: str, new: str) -> Interdiff:
    """The diff from the files ``old`` produces to those ``new`` produces (same base).

    Raises :class:`~storykit.errors.Invalid` when the two disagree about a base line
    (they were made against different versions of a file).
    """
    a_by, b_by = _by_path(file_patches(old)), _by_path(file_patches(new))
    out: list[str] = []
    files: list[str] = []
    notes: list[str] = []
    for path in dict.fromkeys([*a_by, *b_by]):
        pa, pb = a_by.get(path), b_by.get(path)
        if _opaque(pa) or _opaque(pb):
            if _text(pa) != _text(pb):
                notes.append(f"{path}: a binary or repeated patch changed; compare the revisions")
            continue
        pair = _pair(path, _one(pa), _one(pb))
        changes = _changes(pair)
        if changes:
            files.append(path)
            out.append(header(path) + format_hunks(_known(pair.a, pair.gaps), changes))
    return Interdiff(diff="".join(out), files=tuple(files), notes=tuple(notes))


def map_line(old: str, new: str, *, file: str, side: Side, line: int) -> int | None:
    """Where line ``line`` (from 1) of ``file`` on ``side`` of revision ``old`` is in
    revision ``new``, or None if ``new`` changed it.

    ``new`` side: the line of the file ``old`` produces; it stays when ``new`` produces
    the same line there (moved by lines added or removed above it). ``old`` side: the
    base line, whose number never moves; it stays when both revisions keep it, or both
    change it in exactly the same way.
    """
    a_by, b_by = _by_path(file_patches(old)), _by_path(file_patches(new))
    pa, pb = a_by.get(file), b_by.get(file)
    if _opaque(pa) or _opaque(pb):
        return line if _text(pa) == _text(pb) else None
    pair = _pair(file, _one(pa), _one(pb))
    if side is Side.OLD:
        ca, cb = _covering(pair.a_changes, line - 1), _covering(pair.b_changes, line - 1)
        return line if ca == cb else None
    target = line - 1
    offset_a = offset_b = 0
    for k, (chunk_a, chunk_b) in enumerate(zip(pair.a, pair.b, strict=True)):
        if target < offset_a + len(chunk_a):
            i = target - offset_a
            for tag, i1, i2, j1, _ in _opcodes(chunk_a, chunk_b):
                if i1 <= i < i2:
                    return offset_b + j1 + (i - i1) + 1 if tag == "equal" else None
            return None  # pragma: no cover - opcodes cover the whole chunk
        offset_a += len(chunk_a)
        offset_b += len(chunk_b)
        if k < len(pair.gaps):
            gap = pair.gaps[k].length
            if target < offset_a + gap:
                return offset_b + (target - offset_a) + 1  # a line no diff touches
            offset_a += gap
            offset_b += gap
    return offset_b + (target - offset_a) + 1  # below everything either diff shows


def _by_path(patches: Sequence[FilePatch]) -> dict[str, list[FilePatch]]:
    out: dict[str, list[FilePatch]] = {}
    for p in patches:
        out.setdefault(p.path, []).append(p)
    return out


def _opaque(patches: Sequence[FilePatch] | None) -> bool:
    """A binary patch, or one file patched twice in one diff: compared as text only."""
    if not patches:
        return False
    return len(patches) > 1 or any(
        m in patches[0].text for m in ("\nGIT binary patch", "\nBinary files ")
    )


def _text(patches: Sequence[FilePatch] | None) -> str | None:
    return None if not patches else "".join(p.text for p in patches)


def _one(patches: Sequence[FilePatch] | None) -> FilePatch | None:
    return patches[0] if patches else None


def _covering(changes: Sequence[Change], index: int) -> Change | None:
    return next((c for c in changes if c.start <= index < c.end), None)


def _pair(path: str, pa: FilePatch | None, pb: FilePatch | None) -> _Pair:
    known: dict[int, str] = {}
    for p in (pa, pb):
        for index, text in (p.known if p else {}).items():
            if known.setdefault(index, text) != text:
                raise Invalid(
                    f"the revisions disagree about line {index + 1} of {path}: they were"
                    " made against different versions of the file"
                )
    a_changes = pa.changes if pa else ()
    b_changes = pb.changes if pb else ()
    points = {0, *known, *(i + 1 for i in known)}
    for c in (*a_changes, *b_changes):
        points.update((c.start, c.end))
    cuts = sorted(points)
    # The base as segments: one known line each, or one run nobody shows.
    segments: list[tuple[int, _Token]] = []
    for lo, hi in itertools.pairwise(cuts):
        segments.append((lo, known[lo] if lo in known else _Gap(lo, hi - lo)))
    gaps = [t for _, t in segments if isinstance(t, _Gap)]
    return _Pair(
        a=_apply(segments, a_changes),
        b=_apply(segments, b_changes),
        gaps=gaps,
        a_changes=a_changes,
        b_changes=b_changes,
    )


def _apply(segments: Sequence[tuple[int, _Token]], changes: Sequence[Change]) -> list[list[str]]:
    """The file ``changes`` make of the base, as its runs of lines between the gaps."""
    chunks: list[list[str]] = [[]]
    pending = list(changes)
    end = 0
    for start, token in segments:
        while pending and pending[0].start <= start:
            change = pending.pop(0)
            chunks[-1].extend(change.added)
            end = max(end, change.end)
        if start < end:
            continue  # removed by a change
        if isinstance(token, _Gap):
            chunks.append([])
        else:
            chunks[-1].append(token)
    for change in pending:  # insertions at the very end
        chunks[-1].extend(change.added)
    return chunks


def _opcodes(a: Sequence[str], b: Sequence[str]) -> Sequence[tuple[str, int, int, int, int]]:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()


def _changes(pair: _Pair) -> list[Change]:
    """The changes from ``pair.a`` to ``pair.b``, as line positions in ``a``'s file."""
    changes: list[Change] = []
    offset = 0
    for k, (chunk_a, chunk_b) in enumerate(zip(pair.a, pair.b, strict=True)):
        for tag, i1, i2, j1, j2 in _opcodes(chunk_a, chunk_b):
            if tag != "equal":
                changes.append(Change(offset + i1, tuple(chunk_a[i1:i2]), tuple(chunk_b[j1:j2])))
        offset += len(chunk_a) + (pair.gaps[k].length if k < len(pair.gaps) else 0)
    return changes


def _known(chunks: Sequence[Sequence[str]], gaps: Sequence[_Gap]) -> dict[int, str]:
    """The lines of a file given as chunks, by position: what hunks can show as context."""
    known: dict[int, str] = {}
    offset = 0
    for k, chunk in enumerate(chunks):
        for i, text in enumerate(chunk):
            known[offset + i] = text
        offset += len(chunk) + (gaps[k].length if k < len(gaps) else 0)
    return known
