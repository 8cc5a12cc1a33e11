"""Finding the added lines of a unified diff that a regex matches, without splitting the diff.

Splitting a 10 MB diff into lines and walking them in Python costs several times
more than an RE2 scan of the whole text, so policies do it the other way round:

1. One RE2 pass over the raw diff with an alternation of *structure* lines (file
   and hunk headers, at the start of a line) and the policy's own patterns
   (:func:`prefilter`).
2. Only the lines that pass yields are placed: a hunk header opens a hunk, and
   whether a later line is still inside it (and its line number) follows from
   counting line markers with ``bytes.count`` since the hunk's start.

Patterns are written for one added line (without its ``+``). RE2's ``never_nl``
keeps every match inside one line of the raw diff, and the few anchors whose
meaning differs there are rewritten (:func:`raw_line_pattern`). The scan only
*selects* lines: callers then check each selected line exactly, with the patterns
as written, so an over-eager prefilter costs time but never changes a result.

A diff the core accepted (``storykit.diffs.parse_diff``) is scanned the way
``unidiff`` reads it; this module does not validate diffs itself.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

import re2

__all__ = [
    "AddedLine",
    "FileChange",
    "Scan",
    "options",
    "prefilter",
    "raw_line_pattern",
    "scan",
]


def options() -> re2.Options:
    """RE2 options for every policy pattern: matches never cross a line, errors are not logged."""
    opts = re2.Options()
    opts.never_nl = True
    opts.log_errors = False
    return opts


# Lines that shape a diff. A hunk's lines all start with " ", "+", "-" or "\",
# so any of these not starting with "+" or "-" also proves the previous hunk ended.
_STRUCTURE = (
    r"(?m:^)(?:@@ -|diff --git |--- |\+\+\+ |rename to |copy to |new file mode "
    r"|deleted file mode |Binary files? |GIT binary patch)"
)
# Run only on one header line, which it cannot backtrack on.
_HUNK_HEADER = re.compile(rb"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_PREFIX = re.compile(rb"[abciow12]/")  # what unidiff strips from a file name
_DEV_NULL = b"/dev/null"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AddedLine:
    file: str
    line: int
    """The line's number in the new version of ``file``."""
    text: bytes
    """UTF-8, without the leading ``+`` and the line break."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class FileChange:
    source: str | None
    """The path before the change; ``None`` for a new file."""
    target: str | None
    """The path after the change; ``None`` for a deleted file."""
    binary: bool = False

    @property
    def path(self) -> str:
        return self.target or self.source or ""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Scan:
    lines: tuple[AddedLine, ...]
    """Added lines on which the prefilter matched, in diff order."""
    files: tuple[FileChange, ...]
    """Every file the diff touches, in diff order."""


def raw_line_pattern(pattern: str) -> str:
    """``pattern`` (meant for one added line) rewritten to scan the raw diff.

    In the raw diff a line starts with its ``+`` marker and the text goes on past
    the line: ``$`` and ``\\z`` become "end of line", while ``^`` and ``\\A`` are
    dropped (a superset of the matches, which the exact check narrows again).
    ``\\b`` needs nothing: the markers are not word characters.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt == "Q":  # \Q...\E is literal text
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end + 2
                out.append(pattern[i:end])
                i = end
                continue
            if nxt in ("p", "P", "x") and pattern[i + 2 : i + 3] == "{":
                end = pattern.find("}", i + 3)  # \p{^Greek} holds a ^ that is no anchor
                end = n if end < 0 else end + 1
                out.append(pattern[i:end])
                i = end
                continue
            out.append({"A": "(?:)", "z": "(?m:$)"}.get(nxt, pattern[i : i + 2]))
            i += 2
        elif c == "[":
            end = _class_end(pattern, i)
            out.append(pattern[i:end])
            i = end
        else:
            out.append({"^": "(?:)", "$": "(?m:$)"}.get(c, c))
            i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    j = start + 1
    if pattern[j : j + 1] == "^":
        j += 1
    if pattern[j : j + 1] == "]":
        j += 1
    n = len(pattern)
    while j < n:
        c = pattern[j]
        if c == "\\":
            j += 2
        elif c == "[" and pattern[j + 1 : j + 2] == ":":
            close = pattern.find(":]", j + 2)
            j = n if close < 0 else close + 2
        elif c == "]":
            return j + 1
        else:
            j += 1
    return n


def prefilter(patterns: Iterable[str]) -> re2._Regexp:
    """The one regex :func:`scan` runs: structure lines, then ``patterns`` (each for one line)."""
    parts = [_STRUCTURE, *(f"(?:{raw_line_pattern(p)})" for p in patterns)]
    return re2.compile("|".join(parts), options())


def scan(data: bytes, regex: re2._Regexp) -> Scan:
    """Run ``regex`` (from :func:`prefilter`) over the UTF-8 diff ``data``."""
    walker = _Walker(data)
    last = -1
    for match in regex.finditer(data):
        start = data.rfind(b"\n", 0, match.start()) + 1
        if start != last:  # several matches on one line are one line to place
            last = start
            walker.visit(start)
    return walker.result()


@dataclasses.dataclass(kw_only=True, slots=True)
class _File:
    source: str | None = None
    target: str | None = None
    binary: bool = False
    saw_source: bool = False
    saw_target: bool = False
    hunks: bool = False
    git: bool = False
    """Started by a ``diff --git`` line, whose extended headers follow."""

    @property
    def path(self) -> str:
        # What unidiff calls the file: the new name, or the old one for a deletion.
        return self.target or self.source or ""

    def freeze(self) -> FileChange:
        return FileChange(source=self.source, target=self.target, binary=self.binary)


@dataclasses.dataclass(kw_only=True, slots=True)
class _Hunk:
    pos: int
    """Start of the first line not counted yet."""
    old_left: int
    new_left: int
    new_no: int
    """The new-version line number of the line at ``pos`` (unless it is a removal)."""


class _Walker:
    """Places the lines the scan selected, in diff order, in their file and hunk."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.files: list[_File] = []
        self.file: _File | None = None
        self.hunk: _Hunk | None = None
        self.lines: list[AddedLine] = []

    def result(self) -> Scan:
        return Scan(lines=tuple(self.lines), files=tuple(f.freeze() for f in self.files))

    def visit(self, start: int) -> None:
        data = self.data
        end = data.find(b"\n", start)
        if end < 0:
            end = len(data)
        marker = data[start : start + 1]
        if self.hunk is not None:
            if marker in (b"+", b"-", b" ", b"\\", b"") and self._inside(start, marker):
                if marker == b"+":
                    name = self.file.path if self.file is not None else ""
                    line = AddedLine(file=name, line=self.hunk.new_no, text=data[start + 1 : end])
                    self.lines.append(line)
                return
            self.hunk = None
        self._structure(start, end)

    def _inside(self, start: int, marker: bytes) -> bool:
        """Count the hunk's lines up to ``start``: is the line there still part of the hunk?"""
        hunk = self.hunk
        assert hunk is not None
        data, pos = self.data, hunk.pos
        if start > pos:
            lines = data.count(b"\n", pos, start)
            # pos - 1 is the newline before the first uncounted line.
            added = data.count(b"\n+", pos - 1, start)
            removed = data.count(b"\n-", pos - 1, start)
            notes = data.count(b"\n\\", pos - 1, start)
            context = lines - added - removed - notes  # unidiff reads an empty line as context
            hunk.old_left -= context + removed
            hunk.new_left -= context + added
            hunk.new_no += context + added
            hunk.pos = start
        if marker == b"+":
            return hunk.new_left > 0
        if marker == b"-":
            return hunk.old_left > 0
        if marker == b"\\":
            return hunk.old_left > 0 or hunk.new_left > 0
        return hunk.old_left > 0 and hunk.new_left > 0

    def _new_file(self, *, git: bool = False) -> _File:
        self.file = _File(git=git)
        self.files.append(self.file)
        return self.file

    def _structure(self, start: int, end: int) -> None:
        line = self.data[start:end].rstrip(b"\r")
        file = self.file
        if line.startswith(b"@@ -"):
            header = _HUNK_HEADER.match(line)
            if header is None:
                return
            if file is None:
                file = self._new_file()
            file.hunks = True
            self.hunk = _Hunk(
                pos=end + 1,
                old_left=1 if header[2] is None else int(header[2]),
                new_left=1 if header[4] is None else int(header[4]),
                new_no=int(header[3]),
            )
        elif line.startswith(b"diff --git "):
            file = self._new_file(git=True)
            file.source, file.target = _git_header_names(line[len(b"diff --git ") :])
        elif line.startswith(b"--- "):
            if file is None or file.saw_source or file.saw_target or file.hunks:
                file = self._new_file()
            file.saw_source = True
            file.source = _name(line[4:])
        elif line.startswith(b"+++ "):
            if file is None or file.saw_target or file.hunks:
                file = self._new_file()
            file.saw_target = True
            file.target = _name(line[4:])
        elif line.startswith(b"Binary file"):
            if file is None or not file.git or file.binary or file.hunks:
                file = self._new_file()
            file.source, file.target = _binary_names(line)
            file.binary = True
        elif file is None:
            return
        elif line.startswith((b"rename to ", b"copy to ")):
            file.target = _decode(line.split(b" to ", 1)[1])
        elif line.startswith(b"new file mode "):
            file.source = None
        elif line.startswith(b"deleted file mode "):
            file.target = None
        elif line.startswith(b"GIT binary patch"):
            file.binary = True


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def _name(raw: bytes) -> str | None:
    """A file name from a ``---``/``+++``/``Binary files`` header, as unidiff reads it."""
    raw = raw.split(b"\t", 1)[0].strip()
    if raw == _DEV_NULL:
        return None
    if len(raw) >= 2 and raw[:1] == raw[-1:] == b'"':
        raw = raw[1:-1]
    if _PREFIX.match(raw):
        raw = raw[2:]
    return _decode(raw)


def _git_header_names(rest: bytes) -> tuple[str | None, str | None]:
    # "a/x b/x": names may hold spaces, so prefer the split that gives two equal halves.
    half = len(rest) // 2
    if len(rest) % 2 == 1 and rest[half : half + 1] == b" " and rest[2:half] == rest[half + 3 :]:
        return _name(rest[:half]), _name(rest[half + 1 :])
    source, sep, target = rest.rpartition(b" b/")
    if not sep:
        source, _, target = rest.partition(b" ")
        return _name(source), _name(target)
    return _name(source), _name(b"b/" + target)


def _binary_names(line: bytes) -> tuple[str | None, str | None]:
    rest = line.split(b" ", 2)[2] if line.count(b" ") >= 2 else b""
    for suffix in (b" differ", b" has changed"):
        if rest.endswith(suffix):
            rest = rest[: -len(suffix)]
    source, sep, target = rest.partition(b" and ")
    return _name(source), _name(target if sep else source)
