"""The ``risk-regex`` policy: RE2 rules over the lines a diff adds, and over its file names.

Configuration (its section of the policy document)::

    {"rules": [{"id": "aws-access-key-id", "pattern": "\\\\bAKIA[0-9A-Z]{16}\\\\b",
                "severity": "deny", "message": "adds an AWS access key id",
                "files": ["**/*.py"], "scope": "line"}]}

A ``line`` rule (the default scope) is searched for in every added line, without
its ``+``; a ``path`` rule in the path of every file the diff adds or changes
(deletions do not count). ``files`` limits a rule to paths matching those globs
(see :mod:`._glob`). The default rules are :data:`.risk_rules.DEFAULT_RULES`.

Patterns run on RE2, whose matching time is linear in the input, so neither a
hostile pattern nor a hostile diff can hang the server; RE2 rejects what would
need backtracking (lookaround, backreferences), and :meth:`validate_config` says so.
A configuration is compiled once (cached by its canonical JSON) into one RE2 pass
over the raw diff (:mod:`._diffscan`) plus an ``re2.Set`` that tells, for each line
that pass selects, exactly which rules match it.

Findings name the rule, file and line but never quote the matched text: it may
be the very secret the rule is there to keep out of storage and logs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import re2

from storykit.backends import Policy, PolicySubject
from storykit.errors import Invalid
from storykit.hookspecs import hookimpl
from storykit.models import Finding, Outcome
from storykit.settings import Settings
from storykit_plugins.policies import _common
from storykit_plugins.policies._common import MAX_FINDINGS_PER_RULE
from storykit_plugins.policies._diffscan import Prefilter, options, raw_line_pattern, scan
from storykit_plugins.policies._glob import GlobSet
from storykit_plugins.policies.risk_rules import DEFAULT_RULES

__all__ = ["NAME", "RiskRegexPolicy", "Rule", "RuleSet", "compile_rules"]

NAME = "risk-regex"
MAX_RULES = 500
_RULE_KEYS = ("id", "pattern", "severity", "message", "files", "scope")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
# A pattern that matches an empty string would flag every line; these catch the usual ways.
_EMPTY_PROBES = ("", "a", " ", "a b", "0", "_", "+", "/")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Rule:
    """One validated rule."""

    id: str
    pattern: str
    severity: Outcome
    message: str
    scope: str
    """``line`` or ``path``."""
    files: GlobSet

    def applies_to(self, path: str) -> bool:
        return not self.files or self.files.first_match(path) is not None


class RuleSet:
    """A configuration compiled for checking: one scan, then an exact check per selected line."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.line_rules = tuple(r for r in rules if r.scope == "line")
        self.path_rules = tuple(r for r in rules if r.scope == "path")
        try:
            self.prefilter = Prefilter(r.pattern for r in self.line_rules)
        except re2.error as exc:
            raise Invalid(f"the rules together are too large for RE2 ({_reason(exc)})") from None
        self._line_set = _set(self.line_rules)
        self._path_set = _set(self.path_rules)

    @property
    def empty(self) -> bool:
        return not (self.line_rules or self.path_rules)

    def findings(self, diff: bytes) -> list[Finding]:
        """Findings for the UTF-8 ``diff``; CPU-bound, so callers offload it for big diffs."""
        result = scan(diff, self.prefilter)
        out = _Collector()
        if self._line_set is not None:
            for line in result.lines:
                for i in _common.set_hits(self._line_set, line.text):
                    rule = self.line_rules[i]
                    if rule.applies_to(line.file):
                        out.add(rule, file=line.file, line=line.line)
        if self._path_set is not None:
            targets = dict.fromkeys(f.target for f in result.files if f.target is not None)
            for path in targets:
                for i in _common.set_hits(self._path_set, path.encode("utf-8", "surrogatepass")):
                    rule = self.path_rules[i]
                    if rule.applies_to(path):
                        out.add(rule, file=path, line=None)
        return out.finish()


class _Collector:
    """Findings, at most :data:`MAX_FINDINGS_PER_RULE` per rule plus one line counting the rest."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.seen: Counter[str] = Counter()
        self.rules: dict[str, Rule] = {}

    def add(self, rule: Rule, *, file: str, line: int | None) -> None:
        self.seen[rule.id] += 1
        self.rules[rule.id] = rule
        if self.seen[rule.id] <= MAX_FINDINGS_PER_RULE:
            self.findings.append(_finding(rule, rule.message, file=file, line=line))

    def finish(self) -> list[Finding]:
        for rule_id, count in self.seen.items():
            if count > MAX_FINDINGS_PER_RULE:
                rule = self.rules[rule_id]
                more = count - MAX_FINDINGS_PER_RULE
                message = f"{rule.message} ({more} more places not listed)"
                self.findings.append(_finding(rule, message, file=None, line=None))
        return self.findings


def _finding(rule: Rule, message: str, *, file: str | None, line: int | None) -> Finding:
    return Finding(
        policy=NAME, rule=rule.id, severity=rule.severity, message=message, file=file, line=line
    )


def _set(rules: Sequence[Rule]) -> re2.Set | None:
    if not rules:
        return None
    compiled = re2.Set.SearchSet(options())
    for rule in rules:
        compiled.Add(rule.pattern)
    compiled.Compile()
    return compiled


def compile_rules(config: Mapping[str, Any]) -> RuleSet:
    """Validate ``config`` and compile it, or raise :class:`Invalid` naming the rule at fault."""
    return _compile_cached(_common.canonical(config))


@functools.lru_cache(maxsize=16)
def _compile_cached(key: str) -> RuleSet:
    config = _common.section(json.loads(key), ("rules",))
    raw_rules = config.get("rules")
    if not isinstance(raw_rules, list):
        raise Invalid('"rules" must be a list of rule objects')
    if len(raw_rules) > MAX_RULES:
        raise Invalid(f"at most {MAX_RULES} rules, not {len(raw_rules)}")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _rule(i, raw)
        if rule.id in seen:
            raise Invalid(f"rules[{i}]: the id {rule.id!r} is used twice")
        seen.add(rule.id)
        rules.append(rule)
    return RuleSet(rules)


def _rule(i: int, raw: object) -> Rule:
    raw = _common.section(raw, _RULE_KEYS, where=f"rules[{i}]")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
        raise Invalid(
            f'rules[{i}]: "id" must be 1-100 letters, digits or _.:- (starting with a letter'
            f" or digit), not {json.dumps(rule_id)}"
        )
    where = f"rule {rule_id!r}"
    pattern = raw.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise Invalid(f'{where}: "pattern" must be a non-empty string')
    if "severity" not in raw:
        raise Invalid(f'{where}: "severity" is missing (use "warn" or "deny")')
    severity = _common.severity(raw["severity"], f'{where}: "severity"')
    message = raw.get("message", f"matches the risk rule {rule_id}")
    if not isinstance(message, str) or not message.strip():
        raise Invalid(f'{where}: "message" must be a non-empty string')
    scope = raw.get("scope", "line")
    if scope not in ("line", "path"):
        raise Invalid(f'{where}: "scope" must be "line" or "path", not {json.dumps(scope)}')
    globs = _common.string_list(raw.get("files", []), f'{where}: "files"')
    files = GlobSet(globs, where=f'{where}: "files"')
    _check_pattern(pattern, where, scanned=scope == "line")
    return Rule(
        id=rule_id, pattern=pattern, severity=severity, message=message, scope=scope, files=files
    )


def _check_pattern(pattern: str, where: str, *, scanned: bool) -> None:
    try:
        compiled = re2.compile(pattern, options())
    except re2.error as exc:
        reason = _reason(exc)
        hint = ""
        if "perl operator" in reason or re.search(r"escape sequence: \\\d", reason):
            hint = (
                " (RE2 has no lookahead, lookbehind or backreferences, the features that let"
                " a regex run for ever on hostile input; rewrite the pattern without them)"
            )
        raise Invalid(f"{where}: pattern {pattern!r} is not valid RE2: {reason}{hint}") from None
    checks = [compiled]
    if scanned:
        checks.append(re2.compile(raw_line_pattern(pattern), options()))
    for regex in checks:
        for probe in _EMPTY_PROBES:
            found = regex.search(probe)
            if found is not None and found.end() == found.start():
                raise Invalid(
                    f"{where}: pattern {pattern!r} can match an empty string, so it would"
                    " match every line; make it match at least one character"
                )


def _reason(exc: re2.error) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


class RiskRegexPolicy:
    """Flags added lines (and added file names) that match risk rules."""

    name = NAME

    def default_config(self) -> dict[str, Any]:
        return {"rules": [dict(rule) for rule in DEFAULT_RULES]}

    def validate_config(self, config: Mapping[str, Any]) -> None:
        compile_rules(config)

    async def check(self, subject: PolicySubject, config: Mapping[str, Any]) -> list[Finding]:
        rules = compile_rules(config)
        if rules.empty:
            return []
        return await _common.offload(  # encoding a big diff is CPU work too
            len(subject.diff),
            lambda: rules.findings(subject.diff.encode("utf-8", "surrogatepass")),
        )


@hookimpl
def storykit_register_policies(register: Callable[[Policy], None], settings: Settings) -> None:
    register(RiskRegexPolicy())
