"""Finding the added lines of a unified diff that a regex matches, without splitting the diff.

Splitting a 10 MB diff into lines and walking them in Python costs several times
more than an RE2 scan of the whole text, so policies do it the other way round:

1. One RE2 pass over the raw diff with an alternation of *structure* lines (file
   and hunk headers, at the start of a line) and the policy's own patterns
   (:class:`Prefilter`).
2. Only the lines this pass selects are placed: a hunk header opens a hunk, and
   whether a later line is still inside it (and its line number) follows from
   counting line markers with ``bytes.count`` since the hunk's start.

Patterns are written for one added line (without its ``+``). RE2's ``never_nl``
keeps every match inside one line of the raw diff, and the anchors whose meaning
differs there are rewritten (:func:`raw_line_pattern`). The scan only *selects*
lines: callers check each selected line again with the patterns as written, so
an over-eager prefilter costs time but never changes a result.

A git diff is read by its ``diff --git`` lines (git writes one for every file);
any other diff by its ``---``/``+++`` lines, which can also be removed or added
text, so there the hunk counts decide. A diff the core accepted
(``storykit.diffs.parse_diff``) is read the way ``unidiff`` reads it; this module
does not validate diffs itself.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

import re2

__all__ = ["AddedLine", "FileChange", "Prefilter", "Scan", "options", "raw_line_pattern", "scan"]


def options() -> re2.Options:
    """RE2 options for policy patterns: matches stay inside a line, errors are not logged."""
    opts = re2.Options()
    opts.never_nl = True
    opts.log_errors = False
    return opts


# Lines that shape a diff, at the start of a line. A hunk's lines all start with
# " ", "+", "-" or "\", so a line starting otherwise also ends the hunk before it.
_GIT_STRUCTURE = r"(?m:^)(?:diff --git |@@ -)"
_PLAIN_STRUCTURE = r"(?m:^)(?:@@ -|--- |\+\+\+ )"
# Only ever run on one header line, where it cannot backtrack.
_HUNK_HEADER = re.compile(rb"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_PREFIX = re.compile(rb"[abciow12]/")  # what unidiff strips from a file name
_QUOTED = re.compile(rb'"(?:[^"\\]|\\.)*"')
_QUOTED_ESCAPE = re.compile(rb"\\([0-7]{1,3}|.)")
_ESCAPES = {b"n": b"\n", b"t": b"\t", b'"': b'"', b"\\": b"\\", b"a": b"\a", b"b": b"\b",
            b"f": b"\f", b"r": b"\r", b"v": b"\v"}  # fmt: skip
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
            elif nxt in ("p", "P", "x") and pattern[i + 2 : i + 3] == "{":
                end = pattern.find("}", i + 3)  # \p{^Greek}: that ^ is no anchor
                end = n if end < 0 else end + 1
            else:
                out.append({"A": "(?:)", "z": "(?m:$)"}.get(nxt, pattern[i : i + 2]))
                i += 2
                continue
            out.append(pattern[i:end])
            i = end
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


class Prefilter:
    """The regexes :func:`scan` runs: structure lines, then ``patterns`` (each for one line).

    Compiling can raise ``re2.error`` (for example when the patterns together are
    too large for RE2's memory budget).
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        lines = "".join(f"|(?:{raw_line_pattern(p)})" for p in patterns)
        opts = options()
        opts.never_capture = True  # only where a match is matters; lets RE2 use its DFA alone
        self.git = re2.compile(_GIT_STRUCTURE + lines, opts)
        self.plain = re2.compile(_PLAIN_STRUCTURE + lines, opts)


def scan(data: bytes, prefilter: Prefilter) -> Scan:
    """Run ``prefilter`` over the UTF-8 diff ``data``."""
    git = data.startswith(b"diff --git ") or data.find(b"\ndiff --git ") >= 0
    walker = _Walker(data, git=git)
    last = -1
    for match in (prefilter.git if git else prefilter.plain).finditer(data):
        start = data.rfind(b"\n", 0, match.start()) + 1
        if start != last:  # several matches on one line are one line to place
            last = start
            walker.visit(start)
    return Scan(lines=tuple(walker.lines), files=tuple(walker.files))


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

    def __init__(self, data: bytes, *, git: bool) -> None:
        self.data = data
        self.git = git
        self.files: list[FileChange] = []
        self.hunk: _Hunk | None = None
        self.wants_target = False
        """A ``---`` line started the current file and its ``+++`` has not come yet."""
        self.lines: list[AddedLine] = []

    @property
    def path(self) -> str:
        """The current file as unidiff names it: the new path, or the old one if deleted."""
        if not self.files:
            return ""
        file = self.files[-1]
        return file.target or file.source or ""

    def visit(self, start: int) -> None:
        data = self.data
        end = data.find(b"\n", start)
        if end < 0:
            end = len(data)
        marker = data[start : start + 1]
        if self.hunk is not None:
            if marker in (b"+", b"-", b" ", b"\\", b"") and self._inside(start, marker):
                if marker == b"+":
                    text = data[start + 1 : end]
                    self.lines.append(AddedLine(file=self.path, line=self.hunk.new_no, text=text))
                return
            self.hunk = None
        line = data[start:end].rstrip(b"\r")
        if line.startswith(b"@@ -"):
            self._hunk_header(line, end)
        elif self.git:
            if line.startswith(b"diff --git "):
                self._git_header(line, end)
        elif line.startswith((b"--- ", b"+++ ")):
            self._plain_header(line)

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

    def _hunk_header(self, line: bytes, end: int) -> None:
        header = _HUNK_HEADER.match(line)
        if header is None:
            return
        if not self.files:
            self.files.append(FileChange(source=None, target=None))
        self.wants_target = False
        self.hunk = _Hunk(
            pos=end + 1,
            old_left=1 if header[2] is None else int(header[2]),
            new_left=1 if header[4] is None else int(header[4]),
            new_no=int(header[3]),
        )

    def _git_header(self, line: bytes, end: int) -> None:
        source, target = _git_names(line[len(b"diff --git ") :])
        # git writes these right after the "diff --git" line.
        if self.data.startswith(b"new file mode ", end + 1):
            source = None
        elif self.data.startswith(b"deleted file mode ", end + 1):
            target = None
        self.files.append(FileChange(source=source, target=target))

    def _plain_header(self, line: bytes) -> None:
        name = _name(line[4:])
        if line.startswith(b"--- "):  # outside a hunk, "--- " always starts a file
            self.files.append(FileChange(source=name, target=None))
            self.wants_target = True
        elif self.wants_target and self.files:
            self.files[-1] = FileChange(source=self.files[-1].source, target=name)
            self.wants_target = False
        else:
            self.files.append(FileChange(source=None, target=name))


def _name(raw: bytes) -> str | None:
    """A file name from a diff header, as unidiff reads it (``None`` for /dev/null)."""
    raw = raw.split(b"\t", 1)[0].strip()
    if raw == _DEV_NULL:
        return None
    if len(raw) >= 2 and raw[:1] == raw[-1:] == b'"':
        raw = _QUOTED_ESCAPE.sub(_unescape, raw[1:-1])  # git's C-style quoting
    if _PREFIX.match(raw):
        raw = raw[2:]
    return raw.decode("utf-8", "surrogatepass")


def _unescape(match: re.Match[bytes]) -> bytes:
    code = match[1]
    if code[:1].isdigit():
        return bytes([int(code, 8) & 0xFF])
    return _ESCAPES.get(code, code)


def _git_names(rest: bytes) -> tuple[str | None, str | None]:
    """The two names of ``diff --git a/x b/y``; names may hold spaces or be quoted."""
    if rest.startswith(b'"'):
        close = _QUOTED.match(rest)
        if close is not None:
            return _name(close[0]), _name(rest[close.end() :])
    half = len(rest) // 2
    if rest[half : half + 1] == b" " and rest[2:half] == rest[half + 3 :]:
        return _name(rest[:half]), _name(rest[half + 1 :])  # the usual case: the same name twice
    source, sep, target = rest.rpartition(b" b/")
    if not sep:
        source, _, target = rest.partition(b" ")
        return _name(source), _name(target)
    return _name(source), _name(b"b/" + target)
