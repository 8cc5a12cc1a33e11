"""The ``paths`` policy: which paths a suggestion may touch, how big it may be, binary files.

Configuration (its section of the policy document)::

    {"allow": ["src/**", "tests/**", "*.md"],   # empty: every path is allowed
     "deny": [".github/workflows/**", "*.pem"], # deny wins over allow
     "max_files": 100,                          # null: no limit
     "max_changed_lines": 5000,                 # added + removed; null: no limit
     "allow_binary": false,
     "limit_severity": "deny"}                  # for max_files / max_changed_lines

Globs have gitignore-like meaning (see :mod:`._glob`). Every path a change
touches is checked: both names of a rename, and deleted files too (removing a
protected file is a change to it). A key left out keeps its default value.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from storykit.backends import Policy, PolicySubject
from storykit.diffs import ParsedDiff
from storykit.errors import Invalid
from storykit.hookspecs import hookimpl
from storykit.models import Finding, Outcome
from storykit.settings import Settings
from storykit_plugins.policies import _common
from storykit_plugins.policies._glob import GlobSet

__all__ = ["DEFAULTS", "NAME", "PathRules", "PathsPolicy", "compile_paths"]

NAME = "paths"
_KEYS = ("allow", "deny", "max_files", "max_changed_lines", "allow_binary", "limit_severity")
_SHOWN_GLOBS = 5
DEFAULTS: Mapping[str, Any] = {
    "allow": [],
    "deny": [],
    "max_files": 100,
    "max_changed_lines": 5000,
    "allow_binary": False,
    "limit_severity": "deny",
}
"""Also what a key left out of the configuration means (``null`` turns a limit off)."""


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class PathRules:
    allow: GlobSet
    deny: GlobSet
    max_files: int | None
    max_changed_lines: int | None
    allow_binary: bool
    limit_severity: Outcome

    def findings(self, parsed: ParsedDiff) -> list[Finding]:
        out: list[Finding] = []
        for path in parsed.touched:  # unquoted, both names of a rename
            denied = self.deny.first_match(path)
            if denied is not None:
                out.append(_deny("denied-path", f"{path} matches the denied glob {denied!r}", path))
            elif self.allow and self.allow.first_match(path) is None:
                out.append(
                    _deny(
                        "not-allowed",
                        f"{path} is outside the allowed paths ({self._allowed})",
                        path,
                    )
                )
        if not self.allow_binary:
            for path in parsed.binary_files:
                message = f"binary change to {path}; binary files are not allowed (allow_binary)"
                out.append(_deny("binary-file", message, path))
        if self.max_files is not None and len(parsed.files) > self.max_files:
            message = (
                f"changes {len(parsed.files)} files; the limit is {self.max_files} (max_files)"
            )
            out.append(self._limit("too-many-files", message))
        changed = parsed.added + parsed.removed
        if self.max_changed_lines is not None and changed > self.max_changed_lines:
            message = (
                f"changes {changed} lines ({parsed.added} added, {parsed.removed} removed);"
                f" the limit is {self.max_changed_lines} (max_changed_lines)"
            )
            out.append(self._limit("too-many-lines", message))
        return out

    @property
    def _allowed(self) -> str:
        globs = self.allow.globs
        shown = ", ".join(globs[:_SHOWN_GLOBS])
        return shown + (
            f", … {len(globs) - _SHOWN_GLOBS} more" if len(globs) > _SHOWN_GLOBS else ""
        )

    def _limit(self, rule: str, message: str) -> Finding:
        return Finding(policy=NAME, rule=rule, severity=self.limit_severity, message=message)


def _deny(rule: str, message: str, path: str) -> Finding:
    return Finding(policy=NAME, rule=rule, severity=Outcome.DENY, message=message, file=path)


def compile_paths(config: Mapping[str, Any]) -> PathRules:
    """Validate ``config`` and compile its globs, or raise :class:`Invalid` saying what is wrong."""
    return _compile_cached(_common.canonical(config))


@functools.lru_cache(maxsize=16)
def _compile_cached(key: str) -> PathRules:
    config = {**DEFAULTS, **_common.section(json.loads(key), _KEYS)}
    allow_binary = config["allow_binary"]
    if not isinstance(allow_binary, bool):
        raise Invalid(f'"allow_binary" must be true or false, not {json.dumps(allow_binary)}')
    return PathRules(
        allow=GlobSet(_common.string_list(config["allow"], '"allow"'), where='"allow"'),
        deny=GlobSet(_common.string_list(config["deny"], '"deny"'), where='"deny"'),
        max_files=_common.optional_limit(config["max_files"], '"max_files"'),
        max_changed_lines=_common.optional_limit(
            config["max_changed_lines"], '"max_changed_lines"'
        ),
        allow_binary=allow_binary,
        limit_severity=_common.severity(config["limit_severity"], '"limit_severity"'),
    )


class PathsPolicy:
    """Checks the paths a diff touches against allow and deny globs, and its size."""

    name = NAME

    def default_config(self) -> dict[str, Any]:
        return copy.deepcopy(dict(DEFAULTS))

    def validate_config(self, config: Mapping[str, Any]) -> None:
        compile_paths(config)

    async def check(self, subject: PolicySubject, config: Mapping[str, Any]) -> list[Finding]:
        rules = compile_paths(config)
        return await _common.offload(
            len(subject.diff), lambda: rules.findings(_common.parsed(subject.diff))
        )


@hookimpl
def storykit_register_policies(register: Callable[[Policy], None], settings: Settings) -> None:
    register(PathsPolicy())
