"""The ``hidden-text`` policy: text a reviewer cannot see but a compiler or an LLM can.

It looks at the suggestion's title and rationale, the names of the files it
touches, and every added line, for:

- ``bidi``: bidirectional controls that reorder how code is displayed ("Trojan
  Source", CVE-2021-42574): U+202A-U+202E and U+2066-U+2069.
- ``invisible``: zero-width and other invisible characters — U+200B-U+200F,
  U+2060-U+2064, U+FEFF (except a byte order mark at the very start), U+061C,
  U+180E, U+034F, Hangul fillers, U+FFF9-U+FFFB and the supplementary variation
  selectors U+E0100-U+E01EF (used to smuggle data into text).
- ``tags``: Unicode tag characters U+E0000-U+E007F, which spell out invisible ASCII
  (a known way to hide instructions for an LLM); the message shows that text.
- ``html_comments``: ``<!-- … -->``, hidden when Markdown or HTML is rendered; the
  message shows the start of the comment.

Configuration: each category's severity (``"deny"``, ``"warn"`` or ``"off"``) and
``skip_files``, globs of files whose added lines are not checked::

    {"bidi": "deny", "invisible": "warn", "tags": "deny", "html_comments": "warn",
     "skip_files": ["docs/**/*.html"]}

A key left out keeps its default value.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from storykit.backends import Policy, PolicySubject
from storykit.hookspecs import hookimpl
from storykit.models import Finding, Outcome
from storykit.settings import Settings
from storykit_plugins.policies import _common
from storykit_plugins.policies._diffscan import Prefilter, scan
from storykit_plugins.policies._glob import GlobSet

__all__ = ["CATEGORIES", "DEFAULTS", "NAME", "HiddenTextPolicy", "category_of"]

NAME = "hidden-text"
DEFAULTS: Mapping[str, Any] = {
    "bidi": "deny",
    "invisible": "warn",
    "tags": "deny",
    "html_comments": "warn",
    "skip_files": [],
}
"""Also what a key left out of the configuration means."""

# category → (rule id, what to call it, code point ranges, inclusive)
CATEGORIES: Mapping[str, tuple[str, str, tuple[tuple[int, int], ...]]] = {
    "bidi": ("bidi-control", "bidirectional control", ((0x202A, 0x202E), (0x2066, 0x2069))),
    "invisible": (
        "invisible-character",
        "invisible character",
        (
            (0x034F, 0x034F),
            (0x061C, 0x061C),
            (0x115F, 0x1160),
            (0x17B4, 0x17B5),
            (0x180E, 0x180E),
            (0x200B, 0x200F),
            (0x2060, 0x2064),
            (0x3164, 0x3164),
            (0xFEFF, 0xFEFF),
            (0xFFA0, 0xFFA0),
            (0xFFF9, 0xFFFB),
            (0xE0100, 0xE01EF),
        ),
    ),
    "tags": ("tag-character", "tag character", ((0xE0000, 0xE007F),)),
}
_HTML_RULE = "html-comment"
_BOM = "\ufeff"
_SHOWN = 60
_MAX_NAMED = 5


def category_of(char: str) -> str | None:
    """The category of a hidden character (``bidi``, ``invisible``, ``tags``), else ``None``."""
    cp = ord(char)
    for category, (_, _, ranges) in CATEGORIES.items():
        if any(lo <= cp <= hi for lo, hi in ranges):
            return category
    return None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class _Config:
    severities: Mapping[str, Outcome]
    """Enabled categories (and ``html_comments``) and their severities."""
    skip_files: GlobSet
    prefilter: Prefilter | None


@functools.lru_cache(maxsize=16)
def _compile(key: str) -> _Config:
    raw = {**DEFAULTS, **_common.section(json.loads(key), tuple(DEFAULTS))}
    severities: dict[str, Outcome] = {}
    for category in (*CATEGORIES, "html_comments"):
        level = _common.optional_severity(raw[category], f'"{category}"')
        if level is not None:
            severities[category] = level
    skip = GlobSet(_common.string_list(raw["skip_files"], '"skip_files"'), where='"skip_files"')
    patterns = [
        "[" + "".join(_char_range(lo, hi) for lo, hi in CATEGORIES[c][2]) + "]"
        for c in CATEGORIES
        if c in severities
    ]
    if "html_comments" in severities:
        patterns.append("<!--")
    prefilter = Prefilter(patterns) if patterns else None
    return _Config(severities=severities, skip_files=skip, prefilter=prefilter)


def _char_range(lo: int, hi: int) -> str:
    return f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}"


def _findings(config: _Config, subject: PolicySubject) -> list[Finding]:
    out: list[Finding] = []
    for what, text in (("the title", subject.title), ("the rationale", subject.rationale)):
        out.extend(_check_text(config, text, where=what, bom_ok=True))
    if config.prefilter is None:
        return out
    result = scan(subject.diff.encode("utf-8", "surrogatepass"), config.prefilter)
    names = dict.fromkeys(n for f in result.files for n in (f.source, f.target) if n is not None)
    for name in names:
        out.extend(_check_text(config, name, where="the file name", file=name))
    for line in result.lines:
        if config.skip_files.first_match(line.file) is not None:
            continue
        text = line.text.decode("utf-8", "surrogatepass")
        found = _check_text(
            config, text, where="added line", file=line.file, line=line.line, bom_ok=line.line == 1
        )
        out.extend(found)
    return out


def _check_text(
    config: _Config,
    text: str,
    *,
    where: str,
    file: str | None = None,
    line: int | None = None,
    bom_ok: bool = False,
) -> Iterator[Finding]:
    if not text:
        return
    if bom_ok and text.startswith(_BOM):
        text = " " + text[1:]  # a byte order mark opening a file or a text is not hidden text
    found: dict[str, dict[str, int]] = {}  # category → char → first column (1-based)
    for column, char in enumerate(text, start=1):
        if char.isascii():
            continue
        category = category_of(char)
        if category is not None and category in config.severities:
            found.setdefault(category, {}).setdefault(char, column)
    for category, chars in found.items():
        rule, label, _ = CATEGORIES[category]
        if category == "tags":
            # Listing each tag by name says less than the ASCII text they carry.
            tags = [c for c in text if category_of(c) == "tags"]
            hidden = "".join(chr(ord(c) - 0xE0000) for c in tags if 0xE0020 <= ord(c) <= 0xE007E)
            message = (
                f"{where} contains {len(tags)} {label}{'s' if len(tags) > 1 else ''}"
                f" (U+E0000 to U+E007F) from column"
                f" {min(chars.values())}; they spell {_shorten(hidden)!r}"
            )
        else:
            message = f"{where} contains {_describe(label, chars)}"
        yield _finding(config, category, rule, message, file, line)
    if "html_comments" in config.severities and (start := text.find("<!--")) >= 0:
        end = text.find("-->", start + 4)
        comment = text[start + 4 : end if end >= 0 else len(text)].strip()
        message = f"{where} contains an HTML comment, hidden when rendered: {_shorten(comment)!r}"
        yield _finding(config, "html_comments", _HTML_RULE, message, file, line)


def _describe(label: str, chars: Mapping[str, int]) -> str:
    named = [
        f"U+{ord(c):04X} {unicodedata.name(c, 'UNNAMED')} (column {col})"
        for c, col in list(chars.items())[:_MAX_NAMED]
    ]
    more = len(chars) - _MAX_NAMED
    plural = "s" if len(chars) > 1 else ""
    return f"{label}{plural} " + ", ".join(named) + (f" and {more} more" if more > 0 else "")


def _shorten(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _finding(
    config: _Config, category: str, rule: str, message: str, file: str | None, line: int | None
) -> Finding:
    return Finding(
        policy=NAME,
        rule=rule,
        severity=config.severities[category],
        message=message,
        file=file,
        line=line,
    )


class HiddenTextPolicy:
    """Flags invisible or reordering Unicode and HTML comments a reviewer would not see."""

    name = NAME

    def default_config(self) -> dict[str, Any]:
        return copy.deepcopy(dict(DEFAULTS))

    def validate_config(self, config: Mapping[str, Any]) -> None:
        _compile(_common.canonical(config))

    async def check(self, subject: PolicySubject, config: Mapping[str, Any]) -> list[Finding]:
        compiled = _compile(_common.canonical(config))
        size = len(subject.diff) + len(subject.title) + len(subject.rationale)
        return await _common.offload(size, lambda: _findings(compiled, subject))


@hookimpl
def storykit_register_policies(register: Callable[[Policy], None], settings: Settings) -> None:
    register(HiddenTextPolicy())
