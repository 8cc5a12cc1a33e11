"""Path globs with gitignore-like meaning, compiled to RE2.

Neither ``fnmatch`` (its ``*`` crosses ``/``) nor ``PurePosixPath.match`` (matches
from the right, so ``docs/*.md`` also matches ``vendor/docs/a.md``) says what a
reviewer means by ``docs/**``, so globs are translated here:

- Paths are repository-relative with ``/`` separators; matching is case-sensitive.
- ``*`` matches any characters but ``/``; ``?`` one character but ``/``;
  ``[abc]``, ``[a-z]``, ``[!abc]`` (or ``[^abc]``) one character from (not from) a set.
- ``**`` as a whole segment matches any number of directories, none included:
  ``**/test_*.py``, ``src/**``, ``a/**/b``. Elsewhere (``a**b``) it is a ``*``.
- A glob without a ``/`` (a trailing one aside) matches a name at any depth
  (``*.pem``, ``.env``); any other glob is anchored at the repository root
  (``docs/*.md``, ``/setup.py``).
- A glob that matches a directory matches everything inside it (``secrets`` and
  ``secrets/`` match ``secrets/key.pem``); a trailing ``/`` matches directories only.
- There is no escaping: write ``[*]`` for a literal ``*``.
"""

from __future__ import annotations

from collections.abc import Sequence

import re2

from storykit.errors import Invalid
from storykit_plugins.policies._common import set_hits

__all__ = ["GlobSet", "glob_to_regex"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


def glob_to_regex(glob: str) -> str:
    """The RE2 pattern (to be matched against a whole path) for ``glob``."""
    if not glob or "\x00" in glob or glob.strip("/") == "":
        raise Invalid(f"glob {glob!r} is empty")
    body = glob.lstrip("/")
    directory_only = body.endswith("/")
    body = body.rstrip("/")
    anchored = glob.startswith("/") or "/" in body
    segments = body.split("/")
    out = [] if anchored else ["(?:.*/)?"]
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            out.append(".*" if last else "(?:.*/)?")
        else:
            out.append(_segment(segment) + ("" if last else "/"))
    # A match on a directory covers what is inside it.
    out.append("/.+" if directory_only else "(?:/.*)?")
    return "".join(out)


def _segment(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        c = segment[i]
        if c == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := _class_end(segment, i)) > 0:
            out.append(_char_class(segment[i + 1 : end]))
            i = end
        else:
            out.append(re2.escape(c))
        i += 1
    return "".join(out)


def _class_end(segment: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start``, or -1 (then ``[`` is literal)."""
    j = start + 1
    if j < len(segment) and segment[j] in "!^":
        j += 1
    if j < len(segment) and segment[j] == "]":
        j += 1  # a leading ] is a member, as in fnmatch
    return segment.find("]", j)


def _char_class(body: str) -> str:
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    escaped = body.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    # A negated set must still not match the separator.
    return f"[^/{escaped}]" if negate else f"[{escaped}]"


class GlobSet:
    """Globs compiled into one RE2 set: which glob, if any, matches a path."""

    def __init__(self, globs: Sequence[str], *, where: str = "glob") -> None:
        self.globs = tuple(globs)
        self._set: re2.Set | None = None
        if not self.globs:
            return
        compiled = re2.Set.FullMatchSet(_OPTIONS)
        for i, glob in enumerate(self.globs):
            if not isinstance(glob, str):
                raise Invalid(f"{where}[{i}] must be a string")
            try:
                regex = glob_to_regex(glob)
                re2.compile(regex, _OPTIONS)  # Set.Add does not say why a pattern is bad
                compiled.Add(regex)
            except Invalid as exc:
                raise Invalid(f"{where}[{i}]: {exc.detail}") from None
            except re2.error as exc:
                raise Invalid(f"{where}[{i}]: glob {glob!r} is not valid: {_reason(exc)}") from None
        compiled.Compile()
        self._set = compiled

    def __bool__(self) -> bool:
        return bool(self.globs)

    def first_match(self, path: str) -> str | None:
        """The first glob (in the order given) that matches ``path``."""
        if self._set is None:
            return None
        hits = set_hits(self._set, path.encode("utf-8", "surrogatepass"))
        return self.globs[hits[0]] if hits else None


def _reason(exc: re2.error) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
