"""Applying a diff to committed files exactly as written: pure, no I/O.

The ``ruff`` policy's fast path. Most diffs agents send are plain edits made against the
base they name: every hunk's old lines sit exactly where its header says. For those,
this says what each changed file becomes, with no git process. Whenever a diff is
anything else (a hunk that would need an offset or a three-way merge, a rename, a mode
change, a binary or non-UTF-8 file, a name given twice) it answers ``None``: *cannot
tell*, and git decides (``git apply --3way --cached``, the check the PR backends run).
So this only ever says "applies" where git would too (tests compare both on random
diffs); it never says "does not apply", which is git's word, with git's reason.

The rules followed are git's for an exact match (``apply.c``): lines are compared as
bytes up to and including their ``\\n``; a hunk whose old range starts at line 0 or 1
must match at the beginning of the file, and one without trailing context at its end;
hunks come in order and do not overlap; a new file must not exist, nor collide with a
folder or a file on its path; a deleted file must be removed whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from unidiff.patch import Hunk, PatchedFile

from storykit.diffs import FileChange, ParsedDiff
from storykit_plugins._git import TreeEntry

__all__ = ["apply_exactly"]

_REGULAR = frozenset({"100644", "100755"})
# Header lines (before ---/+++) this fast path understands; any other (old/new mode,
# similarity, rename, copy, binary) means git decides.
_OTHER_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_PLAIN_HEADER = re.compile(
    r"(diff --git .*|index [0-9a-f]+\.\.[0-9a-f]+(?: (?P<mode>\d{6}))?"
    r"|new file mode 100644|deleted file mode (?P<deleted>\d{6}))\n?"
)


def apply_exactly(
    diff: str, parsed: ParsedDiff, tree: Mapping[str, TreeEntry], blobs: Mapping[str, bytes]
) -> dict[str, str | None] | None:
    """What each file ``diff`` (parsed: ``parsed``) changes becomes (``None`` for a deleted
    file), when it applies exactly as written to the commit whose files are ``tree`` (path
    → entry) with contents ``blobs`` (object id → bytes, at least the files it changes);
    ``None`` when that cannot be told without git."""
    if _OTHER_BREAKS.search(diff) or not diff.endswith("\n"):
        return None  # unidiff cuts lines at these too; git only at \n
    out: dict[str, str | None] = {}
    for patched, change in zip(parsed.patch, parsed.changes, strict=True):
        path = change.path
        if path in out or not _plain(patched, change, tree.get(path)):
            return None
        if patched.is_added_file:
            if _collides(path, tree):
                return None
            new = _apply(patched, [])
            if new is None:
                return None
            out[path] = "".join(new)
            continue
        entry = tree.get(path)
        data = blobs.get(entry.oid) if entry is not None else None
        if data is None:
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        post = _apply(patched, _lines(text))
        if post is None:
            return None
        if patched.is_removed_file:
            if post:
                return None  # git removes a file only when the patch empties it
            out[path] = None
        else:
            out[path] = "".join(post)
    return out


def _lines(text: str) -> list[str]:
    """``text`` cut after each ``\\n`` (git's lines), the last one possibly without."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _plain(patched: PatchedFile, change: FileChange, entry: TreeEntry | None) -> bool:
    renamed = None not in (change.source, change.target) and change.source != change.target
    if patched.is_binary_file or renamed:
        return False
    for line in patched.patch_info or ():
        match = _PLAIN_HEADER.fullmatch(str(line))
        if match is None:
            return False
        mode = match.group("mode") or match.group("deleted")
        if mode is not None and (entry is None or entry.mode != mode):
            return False
    if patched.is_added_file:
        return entry is None
    return entry is not None and entry.mode in _REGULAR


def _collides(path: str, tree: Mapping[str, TreeEntry]) -> bool:
    """A new file where a file is, or a file is on its way, or files are below it."""
    if path in tree:
        return True
    parts = path.split("/")
    if any("/".join(parts[:n]) in tree for n in range(1, len(parts))):
        return True
    prefix = path + "/"
    return any(name.startswith(prefix) for name in tree)


def _apply(patched: PatchedFile, lines: list[str]) -> list[str] | None:
    """``lines`` with every hunk applied at exactly its stated place, or None."""
    out: list[str] = []
    pos = 0  # lines of the old file already copied or replaced
    for hunk in patched:
        sides = _sides(hunk)
        if sides is None:
            return None
        old, new, trailing = sides
        start = hunk.source_start - 1 if hunk.source_length else hunk.source_start
        if start < pos or start < 0:
            return None  # out of order, overlapping, or a bad header
        if hunk.source_start <= 1 and start != 0:
            return None
        if lines[start : start + len(old)] != old:
            return None
        if not trailing and start + len(old) != len(lines):
            return None  # git: a hunk without trailing context must match at the end
        out.extend(lines[pos:start])
        out.extend(new)
        pos = start + len(old)
    out.extend(lines[pos:])
    if any(not line.endswith("\n") for line in out[:-1]):
        return None  # a line without its newline in the middle: git would not write that
    return out


def _sides(hunk: Hunk) -> tuple[list[str], list[str], int] | None:
    """The hunk's old lines, its new lines (each with its newline unless the diff says
    there is none) and how many context lines end it."""
    old: list[str] = []
    new: list[str] = []
    last: Sequence[list[str]] = ()
    trailing = 0
    for line in hunk:
        kind = line.line_type
        if kind == "\\":
            for side in last:  # "\ No newline at end of file": the line before has none
                if side and side[-1].endswith("\n"):
                    side[-1] = side[-1][:-1]
            continue
        value = line.value if line.value.endswith("\n") else line.value + "\n"
        if kind == " ":
            old.append(value)
            new.append(value)
            last, trailing = (old, new), trailing + 1
        elif kind == "-":
            old.append(value)
            last, trailing = (old,), 0
        elif kind == "+":
            new.append(value)
            last, trailing = (new,), 0
        else:
            return None
    return old, new, trailing
