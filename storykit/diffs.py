"""Reading unified diffs: which files they touch, their hash, and whether they parse.

Parsing is done by ``unidiff``; this module only adds storykit's rules (no paths
that escape the repository, no empty diffs) and error messages.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator

from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchSet

from storykit._unicode import require_utf8
from storykit.errors import Invalid

__all__ = ["AddedLine", "ParsedDiff", "diff_hash", "parse_diff", "safe_repo_path"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class AddedLine:
    file: str
    line: int
    text: str


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ParsedDiff:
    patch: PatchSet
    files: tuple[str, ...]
    binary_files: tuple[str, ...]
    added: int
    removed: int

    def added_lines(self) -> Iterator[AddedLine]:
        """Every added line with the file and its line number in the new version."""
        for patched in self.patch:
            name = str(patched.path)
            for hunk in patched:
                for line in hunk:
                    if line.is_added:
                        yield AddedLine(
                            file=name, line=line.target_line_no or 0, text=line.value.rstrip("\n")
                        )


def diff_hash(diff: str) -> str:
    """``sha256:<hex>`` of the diff text: what a review applies to."""
    return "sha256:" + hashlib.sha256(diff.encode("utf-8", "surrogatepass")).hexdigest()


def safe_repo_path(path: str) -> str:
    """``path`` if it is a plain relative path inside a repository, else raise :class:`Invalid`."""
    if not path or "\x00" in path:
        raise Invalid(f"bad path {path!r}")
    require_utf8(path, f"path {path!r}")
    parts = path.replace("\\", "/").split("/")
    if path.startswith(("/", "\\")) or ".." in parts or (len(parts[0]) == 2 and parts[0][1] == ":"):
        raise Invalid(f"path {path!r} leaves the repository")
    if parts[0] == ".git":
        raise Invalid(f"path {path!r} is inside .git")
    return path


def parse_diff(diff: str) -> ParsedDiff:
    """Parse a unified (git-style or plain) diff, or raise :class:`Invalid` saying why."""
    if not diff.strip():
        raise Invalid("the diff is empty")
    try:
        patch = PatchSet(diff)
    except UnidiffParseError as exc:
        raise Invalid(f"the diff does not parse: {exc}") from None
    if len(patch) == 0:
        raise Invalid("the diff changes no file (expected '--- a/…', '+++ b/…' and @@ hunks)")
    files: list[str] = []
    binary: list[str] = []
    for patched in patch:
        for name in {patched.source_file, patched.target_file}:
            if name and name != "/dev/null":
                safe_repo_path(name[2:] if name[:2] in ("a/", "b/") else name)
        path = safe_repo_path(str(patched.path))
        files.append(path)
        if patched.is_binary_file:
            binary.append(path)
    return ParsedDiff(
        patch=patch,
        files=tuple(dict.fromkeys(files)),
        binary_files=tuple(binary),
        added=patch.added,
        removed=patch.removed,
    )
