"""Combining approved suggestions' diffs into one diff, and finding where they collide.

This is how the core derives every variant's diff (SPEC §4: a branch or PR commits
exactly the approved diffs of the suggestions it names). A planner only chooses which
suggestions go into a variant and in which order; :func:`derive_variant` makes the rest
from the suggestions themselves, so no planner can add a line nobody reviewed.

Each suggestion's diff is read into per-file *changes*: runs of removed and
added lines at a position in the original file, plus the original lines the
diff shows (context and removed lines). Two suggestions collide in a file when
a change of one intersects or touches (adjacent lines, or the same insertion
point) a change of the other, when they disagree about an original line (they
were made against different versions), or when either renames, creates,
deletes, changes the mode of, or binary-patches the file. The suggestion that
comes first is kept and the later one is left out of the combined diff
entirely, since half of a reviewed suggestion is not what anyone approved.

A file only one suggestion touches keeps that suggestion's patch byte for byte
(index line included, so ``git apply --3way`` can merge it later); a file
several suggestions touch gets one merged patch whose hunks are rebuilt from
the changes, with the context lines the diffs showed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from storykit.diffs import parse_diff
from storykit.errors import Invalid
from storykit.gitdiff import Change, format_hunks, header
from storykit.models import Conflict, Risk, Suggestion, Variant

__all__ = [
    "Combined",
    "FilePatch",
    "combine",
    "combine_suggestions",
    "derive_variant",
    "file_patches",
    "variant_risk",
]

_RISK_RANK = {Risk.LOW: 0, Risk.MEDIUM: 1, Risk.UNKNOWN: 2, Risk.HIGH: 3}

_SPECIAL_HEADERS = (
    "old mode",
    "new mode",
    "deleted file mode",
    "new file mode",
    "rename from",
    "copy from",
    "similarity index",
    "GIT binary patch",
    "Binary files",
)


@dataclasses.dataclass(frozen=True, slots=True)
class FilePatch:
    """One suggestion's patch to one file."""

    path: str
    claims: frozenset[str]
    """Every path the patch reads or writes (both names of a rename)."""
    changes: tuple[Change, ...]
    known: dict[int, str]
    """Original lines (0-based) the patch shows, as context or as removed lines."""
    text: str
    """The patch as it appeared in the suggestion (or rebuilt, for a plain diff)."""
    special: bool
    """Renames, new or deleted files, mode changes, binary patches: taken whole, never merged."""


@dataclasses.dataclass(frozen=True, slots=True)
class Combined:
    diff: str
    included: tuple[str, ...]
    conflicts: tuple[Conflict, ...]


def _split_lines(text: str) -> list[str]:
    # Only "\n" ends a line in a diff; str.splitlines would also split on "\r" or "\f".
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _sections(diff: str, count: int) -> list[str] | None:
    """The text of each file's patch, when the diff is git-style (one ``diff --git`` each)."""
    lines = _split_lines(diff)
    starts = [i for i, line in enumerate(lines) if line.startswith("diff --git ")]
    if len(starts) != count:
        return None
    out = []
    for a, b in zip(starts, [*starts[1:], len(lines)], strict=True):
        text = "".join(lines[a:b])
        out.append(text if text.endswith("\n") else text + "\n")
    return out


def file_patches(diff: str) -> list[FilePatch]:
    """Read a suggestion's diff; raises :class:`~storykit.errors.Invalid` if it does not parse."""
    parsed = parse_diff(diff)
    sections = _sections(diff, len(parsed.patch))
    seen: dict[str, int] = {}
    for pf in parsed.patch:
        seen[str(pf.path)] = seen.get(str(pf.path), 0) + 1
    out = []
    for n, pf in enumerate(parsed.patch):
        path = str(pf.path)
        info = [str(line) for line in (pf.patch_info or ())]
        special = (
            pf.is_added_file
            or pf.is_removed_file
            or pf.is_rename
            or pf.is_binary_file
            or any(line.startswith(_SPECIAL_HEADERS) for line in info)
            or seen[path] > 1  # the same file twice: the second patch reads the first's output
        )
        changes, known = _read_hunks(pf)
        claims = frozenset(
            _strip(name) for name in (pf.source_file, pf.target_file) if name != "/dev/null"
        )
        if sections is not None:
            text = sections[n]
        elif special:
            text = str(pf)
        else:
            text = header(path) + format_hunks(known, changes)
        out.append(FilePatch(path, claims | {path}, changes, known, text, bool(special)))
    return out


def _strip(name: str) -> str:
    return name[2:] if name[:2] in ("a/", "b/") else name


def _read_hunks(pf: Any) -> tuple[tuple[Change, ...], dict[int, str]]:
    changes: list[Change] = []
    known: dict[int, str] = {}
    for hunk in pf:
        # An empty source range names the line *after which* the hunk inserts.
        pos = hunk.source_start - 1 if hunk.source_length else hunk.source_start
        start: int | None = None
        removed: list[str] = []
        added: list[str] = []
        last: tuple[str, int] | None = None
        for line in hunk:
            kind = line.line_type
            if kind in (" ", "") and start is not None:
                changes.append(Change(start, tuple(removed), tuple(added)))
                start, removed, added = None, [], []
            if kind in (" ", ""):
                known[pos] = line.value
                last = ("known", pos)
                pos += 1
            elif kind == "-":
                start = pos if start is None else start
                removed.append(line.value)
                known[pos] = line.value
                last = ("removed", pos)
                pos += 1
            elif kind == "+":
                start = pos if start is None else start
                added.append(line.value)
                last = ("added", len(added) - 1)
            elif kind == "\\" and last is not None:
                where, index = last  # "\ No newline at end of file" is about the line before
                if where == "added":
                    added[index] = added[index].removesuffix("\n")
                else:
                    known[index] = known[index].removesuffix("\n")
                    if where == "removed":
                        removed[-1] = removed[-1].removesuffix("\n")
        if start is not None:
            changes.append(Change(start, tuple(removed), tuple(added)))
    return tuple(changes), known


def _touching(a: Change, b: Change) -> bool:
    # Closed intervals: overlapping, adjacent, or inserting at the same place.
    return a.start <= b.end and b.start <= a.end


def _lines(change: Change) -> str:
    first, last = change.start + 1, max(change.end, change.start + 1)
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _collision(mine: FilePatch, theirs: FilePatch) -> str | None:
    """Why ``mine`` cannot join ``theirs``, or None if both fit in one patch."""
    if mine.special or theirs.special:
        return "one of them renames, creates, deletes or re-modes the file, or patches it as binary"
    for a in mine.changes:
        for b in theirs.changes:
            if _touching(a, b):
                return f"both change {_lines(a)} (or the lines next to them)"
    for n, text in mine.known.items():
        other = theirs.known.get(n)
        if other is not None and other != text:
            return f"they disagree about line {n + 1} (made against different versions)"
    return None


def combine(items: Sequence[tuple[str, Sequence[FilePatch]]]) -> Combined:
    """Combine suggestions (id, patches) in order; a later one that collides is left out."""
    accepted: list[str] = []
    conflicts: list[Conflict] = []
    by_path: dict[str, list[tuple[str, FilePatch]]] = {}
    order: list[FilePatch] = []
    for sid, patches in items:
        found: list[Conflict] = []
        for patch in patches:
            kept: dict[str, str] = {}
            for path in sorted(patch.claims):
                for other_id, other in by_path.get(path, ()):
                    why = _collision(patch, other)
                    if why and other_id not in kept:
                        kept[other_id] = why
            if kept:
                ids = (*kept, sid)
                detail = "; ".join(f"{k}: {why}" for k, why in kept.items())
                found.append(
                    Conflict(
                        file=patch.path,
                        suggestion_ids=ids,
                        detail=f"{detail}. Kept {', '.join(kept)}; left out {sid}.",
                    )
                )
        if found:
            conflicts.extend(found)
            continue
        accepted.append(sid)
        for patch in patches:
            order.append(patch)
            for path in patch.claims:
                by_path.setdefault(path, []).append((sid, patch))
    return Combined(
        diff=_emit(order, by_path), included=tuple(accepted), conflicts=tuple(conflicts)
    )


def _emit(order: Sequence[FilePatch], by_path: dict[str, list[tuple[str, FilePatch]]]) -> str:
    out: list[str] = []
    done: set[int] = set()
    for patch in order:
        if id(patch) in done:
            continue
        sharing = [p for _, p in by_path[patch.path] if id(p) not in done]
        done.update(id(p) for p in sharing)
        if len(sharing) == 1:
            out.append(patch.text)
            continue
        known: dict[int, str] = {}
        for p in sharing:
            known.update(p.known)
        changes = sorted((c for p in sharing for c in p.changes), key=lambda c: (c.start, c.end))
        out.append(header(patch.path) + format_hunks(known, changes))
    return "".join(out)


def variant_risk(risks: Sequence[Risk]) -> Risk:
    """The highest risk, ``unknown`` ranking above ``medium`` and below ``high``;
    with nothing to judge, ``unknown``."""
    return max(risks, key=_RISK_RANK.__getitem__, default=Risk.UNKNOWN)


def combine_suggestions(
    suggestions: Sequence[Suggestion], patches: dict[str, list[FilePatch]] | None = None
) -> Combined:
    """Combine the suggestions' current diffs in the order given.

    ``patches`` caches each suggestion's parsed diff by id, for callers that combine
    the same suggestions into several variants.
    """
    cache = {} if patches is None else patches
    items = []
    for s in suggestions:
        if s.id not in cache:
            try:
                cache[s.id] = file_patches(s.diff)
            except Invalid as exc:
                raise Invalid(f"suggestion {s.id}: {exc.detail}") from None
        items.append((s.id, cache[s.id]))
    return combine(items)


def derive_variant(
    variant: Variant,
    suggestions: Sequence[Suggestion],
    patches: dict[str, list[FilePatch]] | None = None,
) -> Variant:
    """``variant`` as the core stores it: its diff, conflicts, risk and the diff hash of
    each suggestion it contains, all made from ``suggestions`` (by id, in the variant's
    order); whatever the planner put in those fields is ignored."""
    by_id = {s.id: s for s in suggestions}
    missing = [i for i in variant.suggestion_ids if i not in by_id]
    if missing:
        raise Invalid(f"variant {variant.key!r} names unknown suggestions: {', '.join(missing)}")
    if len(set(variant.suggestion_ids)) != len(variant.suggestion_ids):
        raise Invalid(f"variant {variant.key!r} names a suggestion twice")
    combined = combine_suggestions([by_id[i] for i in variant.suggestion_ids], patches)
    return dataclasses.replace(
        variant,
        suggestion_ids=combined.included,
        diff=combined.diff,
        conflicts=combined.conflicts,
        risk=variant_risk([by_id[i].risk for i in combined.included]),
        suggestion_hashes={i: by_id[i].diff_hash for i in combined.included},
    )
