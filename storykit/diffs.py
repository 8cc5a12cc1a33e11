"""Reading unified diffs: which files they touch, their hash, and whether they parse.

Parsing is done by ``unidiff``; this module adds storykit's rules and error messages:
no empty diffs, and no file name that leaves the repository or reaches into a
``.git`` folder, *as git reads the diff*. git takes file names from several header
lines (``diff --git``, ``---``/``+++``, ``rename from/to``, ``copy from/to``) and
undoes its C-style quoting (``"b/\\056\\056/x"`` is ``../x``), while ``unidiff``
reads only some of those lines and keeps the quotes. So every name on every header
line outside a hunk is unquoted and checked, and the names of one file's git header
must agree with each other (else what a policy saw would not be what git applies).

Parsing a big diff takes a while (about a second for 5 MB): :func:`parse_diff_async`
does it in a worker thread so the event loop keeps serving everyone else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterator

from unidiff.constants import (
    RE_DIFF_GIT_HEADER,
    RE_DIFF_GIT_HEADER_NO_PREFIX,
    RE_DIFF_GIT_HEADER_URI_LIKE,
    RE_HUNK_HEADER,
    RE_PATCH_FILE_PREFIX,
    RE_SOURCE_FILENAME,
    RE_TARGET_FILENAME,
)
from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

from storykit._offload import off_loop
from storykit._unicode import require_utf8
from storykit.errors import Invalid

__all__ = [
    "AddedLine",
    "FileChange",
    "ParsedDiff",
    "diff_hash",
    "git_unquote",
    "parse_diff",
    "parse_diff_async",
    "safe_repo_path",
]

_DEV_NULL = "/dev/null"
# git's C-style quoting: these escapes, and three octal digits for any other byte.
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_OCTAL = re.compile(r"[0-3][0-7]{2}")
# Names git treats as its own folder: any case (case-insensitive file systems), with the
# trailing dots and spaces Windows drops, and NTFS's short name for it.
_GIT_DIRS = (".git", "git~1")
# Code points HFS+ ignores in names, so ".g\u200cit" is ".git" there (as git checks).
_HFS_IGNORED = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)
_DRIVE = re.compile(r"[A-Za-z]:")
# Header lines that name a file, and which side of the change each names. git takes
# rename and copy names without the a/ or b/ prefix.
_OLD_NAMES = ("rename from ", "rename old ", "copy from ")
_NEW_NAMES = ("rename to ", "rename new ", "copy to ")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AddedLine:
    file: str
    line: int
    text: str


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class FileChange:
    """One file's patch, its names unquoted and without git's ``a/``/``b/`` prefixes."""

    path: str
    """The file as it is after the change (before it, for a deletion): what ``files`` lists."""
    source: str | None
    """The name before the change; ``None`` for a new file."""
    target: str | None
    """The name after the change; ``None`` for a deleted file."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ParsedDiff:
    patch: PatchSet
    changes: tuple[FileChange, ...]
    """One per file patch, in the order of ``patch``."""
    files: tuple[str, ...]
    binary_files: tuple[str, ...]
    added: int
    removed: int

    def added_lines(self) -> Iterator[AddedLine]:
        """Every added line with the file and its line number in the new version."""
        for patched, change in zip(self.patch, self.changes, strict=True):
            for hunk in patched:
                for line in hunk:
                    if line.is_added:
                        yield AddedLine(
                            file=change.path,
                            line=line.target_line_no or 0,
                            text=line.value.rstrip("\n"),
                        )

    @property
    def touched(self) -> tuple[str, ...]:
        """Every name the diff reads or writes (both names of a rename), each once."""
        names = (n for c in self.changes for n in (c.source, c.target) if n is not None)
        return tuple(dict.fromkeys(names))


def diff_hash(diff: str) -> str:
    """``sha256:<hex>`` of the diff text: what a review applies to."""
    return "sha256:" + hashlib.sha256(diff.encode("utf-8", "surrogatepass")).hexdigest()


def safe_repo_path(path: str) -> str:
    """``path`` if it is a plain relative path inside a repository, else raise :class:`Invalid`.

    Every component is checked, with ``/`` and ``\\`` both separators (Windows reads
    either): no ``..``, no ``.git`` in any case or disguise, no absolute path or drive.
    """
    if not path or "\x00" in path:
        raise Invalid(f"bad path {path!r}")
    require_utf8(path, f"path {path!r}")
    parts = path.replace("\\", "/").split("/")
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        raise Invalid(f"path {path!r} leaves the repository (it is absolute)")
    for part in parts:
        # A name that ends in a space and a timestamp ("x/.. 2024-01-01") is cut there
        # by git's reading of plain diffs, so the first word is checked as well.
        for reading in {part, part.split(" ", 1)[0]}:
            if reading == "..":
                raise Invalid(f"path {path!r} leaves the repository")
            if reading.translate(_HFS_IGNORED).rstrip(" .").lower() in _GIT_DIRS:
                raise Invalid(f"path {path!r} is inside a .git folder, which only git may change")
    return path


def git_unquote(name: str) -> str:
    """A file name as git reads it: its C-style quoting undone (``"a/caf\\303\\251"`` is
    ``a/café``); an unquoted name as it is. :class:`Invalid` if the quoting is broken
    or the bytes are not UTF-8."""
    if len(name) < 2 or name[0] != '"' or name[-1] != '"':
        return name
    body = name[1:-1]
    out = bytearray()
    i = 0
    while (j := body.find("\\", i)) >= 0:
        plain = body[i:j]
        if '"' in plain:
            raise Invalid(f"the file name {name} has a quote git would have escaped")
        out += plain.encode("utf-8")
        escape = body[j + 1 : j + 2]
        if escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            i = j + 2
        elif _OCTAL.fullmatch(body, j + 1, j + 4):
            out.append(int(body[j + 1 : j + 4], 8))
            i = j + 4
        else:
            raise Invalid(f"the file name {name} has an escape git does not write")
    if '"' in body[i:]:
        raise Invalid(f"the file name {name} has a quote git would have escaped")
    out += body[i:].encode("utf-8")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"the file name {name} is not UTF-8 once unquoted") from None


def _repo_name(raw: str, *, prefixed: bool = True) -> str | None:
    """A header's file name, checked: unquoted, without its ``a/``-style prefix; ``None``
    for /dev/null."""
    if not raw or raw == _DEV_NULL:
        return None
    name = git_unquote(raw)
    if prefixed and RE_PATCH_FILE_PREFIX.match(name):
        name = name[2:]
    return safe_repo_path(name)


def parse_diff(diff: str) -> ParsedDiff:
    """Parse a unified (git-style or plain) diff, or raise :class:`Invalid` saying why."""
    if not diff.strip():
        raise Invalid("the diff is empty")
    require_utf8(diff, "the diff")
    try:
        patch = PatchSet(diff)
    except UnidiffParseError as exc:
        raise Invalid(f"the diff does not parse: {exc}") from None
    except ValueError as exc:  # a hunk header with a number of thousands of digits
        raise Invalid(f"the diff does not parse: {exc}") from None
    if len(patch) == 0:
        raise Invalid("the diff changes no file (expected '--- a/…', '+++ b/…' and @@ hunks)")
    _check_headers(diff)
    changes: list[FileChange] = []
    binary: list[str] = []
    for patched in patch:
        path = _repo_name(str(patched.path), prefixed=False)
        if path is None:
            raise Invalid("the diff has a file patch without a file name")
        change = FileChange(
            path=path,
            source=_repo_name(patched.source_file),
            target=_repo_name(patched.target_file),
        )
        changes.append(change)
        if patched.is_binary_file:
            binary.append(path)
    return ParsedDiff(
        patch=patch,
        changes=tuple(changes),
        files=tuple(dict.fromkeys(c.path for c in changes)),
        binary_files=tuple(binary),
        added=patch.added,
        removed=patch.removed,
    )


async def parse_diff_async(diff: str) -> ParsedDiff:
    """:func:`parse_diff`, in a worker thread when the diff is big enough to stall the loop."""
    return await off_loop(len(diff), lambda: parse_diff(diff))


def _check_headers(diff: str) -> None:
    """Check every file name on every header line, as git reads them (see the module doc).

    Hunk bodies are skipped by their line counts, as git and unidiff both read them,
    so a removed line that looks like ``--- a/x`` is content, not a header.
    """
    lines = iter(diff.split("\n"))
    expected: dict[str, str | None] | None = None  # within a git header: old/new name
    for line in lines:
        hunk = RE_HUNK_HEADER.match(line)
        if hunk is not None:
            _skip_hunk(lines, hunk)
            expected = None  # a git header ends at its first hunk
        elif line.startswith("diff --git "):
            expected = dict(zip(("old", "new"), _git_header_names(line), strict=True))
        elif line.startswith(("--- ", "+++ ")):
            found = (RE_SOURCE_FILENAME if line[0] == "-" else RE_TARGET_FILENAME).match(line)
            name = _repo_name(found["filename"]) if found else None
            if expected is not None and name is not None:
                _agree(expected, "old" if line[0] == "-" else "new", name, line[:3])
        elif expected is not None and line.startswith(_OLD_NAMES + _NEW_NAMES):
            side = "old" if line.startswith(_OLD_NAMES) else "new"
            keyword = " ".join(line.split(" ", 2)[:2])
            raw = line[len(keyword) + 1 :]
            name = _repo_name(raw, prefixed=False)
            if name is None:
                raise Invalid(f"the diff's {keyword!r} line names no file")
            _agree(expected, side, name, keyword)


def _git_header_names(line: str) -> tuple[str | None, str | None]:
    """The two names of a ``diff --git`` line, split as unidiff splits them, checked."""
    for regex in (RE_DIFF_GIT_HEADER, RE_DIFF_GIT_HEADER_URI_LIKE, RE_DIFF_GIT_HEADER_NO_PREFIX):
        found = regex.match(line)
        if found is not None:
            return _repo_name(found["source"]), _repo_name(found["target"])
    return None, None  # git needs the names from other header lines, which are checked


def _agree(expected: dict[str, str | None], side: str, name: str, keyword: str) -> None:
    """One git header names one file on each side: were a line to name another, git would
    apply that one while storykit (and every policy) judged the first."""
    first = expected[side]
    if first is None:
        expected[side] = name
    elif name != first:
        raise Invalid(
            f"the diff's header for {first!r} names another file, {name!r}, in its"
            f" {keyword!r} line; every header line of a file must name that file"
        )


def _skip_hunk(lines: Iterator[str], header: re.Match[str]) -> None:
    old = 1 if header[2] is None else int(header[2])
    new = 1 if header[4] is None else int(header[4])
    while old > 0 or new > 0:
        line = next(lines, None)
        if line is None:
            return
        marker = line[:1]
        if marker == "+":
            new -= 1
        elif marker == "-":
            old -= 1
        elif marker != "\\":  # " ", or an empty line, which unidiff and git read as context
            old -= 1
            new -= 1
