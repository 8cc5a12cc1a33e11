"""The ``ruff`` policy: does a diff from outside apply to its base, and what does ruff say
of the lines it adds.

Configuration (its section of the policy document)::

    {"does_not_apply": "deny",   # a diff that does not apply to its base_ref: deny, warn or off
     "lint": "warn"}             # ruff's diagnostics on added lines: warn, deny or off

It judges diffs whose subject names a repository (``subject.repo_path``: agents'
submissions and revisions, refiners' versions, ``POST /policies/check``), not a
source's own drafts. First, for every diff, Python or not: does it apply to
``subject.base_ref`` (``diff:does-not-apply``; ``diff:unchecked`` when the repository
or the base cannot be read). Then ruff on the Python files it changes, as they are
once it is applied: a diagnostic is a finding when any line it covers was added.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from storykit.backends import PolicySubject
from storykit.diffs import AddedLine, ParsedDiff
from storykit.errors import BackendError, Invalid
from storykit.models import Finding, Outcome
from storykit_plugins._git import ls_tree, read_blobs, run_git, summarize
from storykit_plugins._git_pr import check_applies
from storykit_plugins.policies import _common
from storykit_plugins.ruff import export, patch
from storykit_plugins.ruff.bases import Bases
from storykit_plugins.ruff.batch import Batches
from storykit_plugins.ruff.fixes import export_roots, relative
from storykit_plugins.ruff.tool import Diagnostic, Ruff

__all__ = ["DEFAULTS", "MAX_FINDINGS", "NAME", "RuffPolicy", "findings", "unchecked"]

NAME = "ruff"
MAX_FINDINGS = 50
DEFAULTS: Mapping[str, Any] = {"does_not_apply": "deny", "lint": "warn"}
"""Also what a key left out of the configuration means."""


def _severities(config: Mapping[str, Any]) -> tuple[Outcome | None, Outcome | None]:
    """(does_not_apply, lint) severities of a configuration, ``None`` for off; or
    :class:`Invalid` saying what is wrong."""
    merged = {**DEFAULTS, **_common.section(config, DEFAULTS)}
    return (
        _common.optional_severity(merged["does_not_apply"], '"does_not_apply"'),
        _common.optional_severity(merged["lint"], '"lint"'),
    )


class RuffPolicy:
    """Checks that a diff from outside applies to its base, then ruff on what it adds."""

    name = NAME

    def __init__(self, ruff: Ruff | None = None) -> None:
        self.ruff = ruff or Ruff()
        self.bases = Bases()
        self.batches = Batches(self.ruff)

    def default_config(self) -> dict[str, Any]:
        return copy.deepcopy(dict(DEFAULTS))

    def validate_config(self, config: Mapping[str, Any]) -> None:
        _severities(config)

    async def check(self, subject: PolicySubject, config: Mapping[str, Any]) -> list[Finding]:
        applies, lint = _severities(config)
        if subject.repo_path is None or (applies is None and lint is None):
            return []
        try:
            parsed = await _common.offload(len(subject.diff), lambda: _common.parsed(subject.diff))
        except Invalid:
            return []  # storykit itself refuses diffs that do not parse
        targets = [
            str(pf.path)
            for pf in parsed.patch
            if str(pf.path).endswith(export.PY_SUFFIXES) and not pf.is_removed_file
        ]
        base = subject.base_ref or "HEAD"
        python = lint is not None and bool(targets)
        try:
            repo = await self.bases.repo(subject.repo_path)
            commit = await self.bases.resolve(repo, base)
            known = await self.bases.base(repo, commit)
            changed = [known.tree[p] for p in parsed.touched if p in known.tree]
            wanted = [*changed, *known.configs] if python else changed
            blobs = await self.bases.blobs(repo, (e.oid for e in wanted))
            post = await _common.offload(
                len(subject.diff),
                lambda: patch.apply_exactly(subject.diff, parsed, known.tree, blobs),
            )
            problem = None
            if post is None and applies is not None:  # not a plain edit: git decides
                problem = await check_applies(repo.root, commit, subject.diff, self._work_dir())
        except (BackendError, Invalid) as exc:
            return unchecked(exc.detail, python=python)
        if problem is not None and applies is not None:
            return [
                Finding(
                    rule="diff:does-not-apply",
                    message=f"the diff does not apply to {base} ({commit[:12]}): {problem};"
                    f" make it against {base}, or set base_ref to the commit it was made on",
                    severity=applies,
                    policy=NAME,
                )
            ]
        if not python or lint is None:
            return []
        if post is None:
            return await self._lint(repo.root, commit, base, subject.diff, parsed, targets, lint)
        files = {e.path: blobs[e.oid].decode("utf-8", "replace") for e in known.configs}
        for path, text in post.items():
            if text is None:
                files.pop(path, None)
            elif path in files or path in targets:
                files[path] = text
        present = [t for t in targets if post.get(t) is not None]
        options = await self.ruff.options(
            {p: t for p, t in files.items() if p in {e.path for e in known.configs}},
            only_fixable=False,
        )
        diagnostics = await self.batches.check(files, present, options)
        return findings(diagnostics, None, parsed.added_lines(), lint)

    async def _lint(
        self,
        repo: Path,
        commit: str,
        base: str,
        diff: str,
        parsed: ParsedDiff,
        targets: Sequence[str],
        severity: Outcome,
    ) -> list[Finding]:
        entries = await ls_tree(repo, commit)
        touched = {export.strip_prefix(str(pf.source_file)) for pf in parsed.patch}
        wanted = [e for e in entries if e.path in touched or export.is_config(e)]
        blobs = await read_blobs(repo, (e.oid for e in wanted))
        size = sum(map(len, blobs.values()))
        async with export.Scratch(self.ruff.scratch_dir, size) as scratch:
            tree = scratch / "tree"
            texts = await export.export(tree, wanted, blobs)
            configs = {e.path: texts.get(e.path, "") for e in entries if export.is_config(e)}
            patch = scratch / "change.patch"
            await anyio.Path(patch).write_text(diff, encoding="utf-8", newline="")
            # Outside any repository, so git apply works as a plain patch tool on the export.
            applied = await run_git(
                ["apply", "--whitespace=nowarn", str(patch)],
                cwd=tree,
                env={"GIT_CEILING_DIRECTORIES": str(scratch)},
            )
            if not applied.ok:
                # It applies (checked above), but only as a three-way merge, which needs
                # the repository; ruff checks the exported files alone.
                return [
                    _note(
                        "ruff:not-applied",
                        f"ruff did not check this diff: it applies to {base} ({commit[:12]})"
                        f" only by a three-way merge: {summarize(applied.stderr)}",
                    )
                ]
            present = [t for t in targets if await anyio.Path(tree / t).is_file()]
            if not present:
                return []
            options = await self.ruff.options(configs, only_fixable=False)
            diagnostics = await self.ruff.check(tree, present, options)
        return findings(diagnostics, export_roots(tree), parsed.added_lines(), severity)

    def _work_dir(self) -> Path:
        return self.ruff.scratch_dir or Path(tempfile.gettempdir())


def _note(rule: str, message: str) -> Finding:
    return Finding(rule=rule, message=message, severity=Outcome.WARN, policy=NAME)


def unchecked(reason: str, *, python: bool) -> list[Finding]:
    """Warnings for a diff whose base could not be read (no repository, no such commit)."""
    found = [_note("diff:unchecked", f"storykit could not check that the diff applies: {reason}")]
    if python:
        found.append(_note("ruff:skipped", f"ruff did not check this diff: {reason}"))
    return found


def findings(
    diagnostics: Sequence[Diagnostic],
    roots: Sequence[str] | None,
    added: Iterable[AddedLine],
    severity: Outcome = Outcome.WARN,
) -> list[Finding]:
    """The diagnostics that cover a line the diff added, as findings (at most
    :data:`MAX_FINDINGS`, then one ``ruff:more``). ``roots``: where ruff saw the files;
    ``None`` when each diagnostic's ``filename`` is already a repository path."""
    added_lines: dict[str, set[int]] = {}
    for line in added:
        added_lines.setdefault(line.file, set()).add(line.line)
    out: list[Finding] = []
    extra = 0
    for diag in sorted(diagnostics, key=_position):
        name = diag.get("filename")
        path = (
            relative(name, roots) if roots is not None else name if isinstance(name, str) else None
        )
        rows = added_lines.get(path or "", set())
        first = int(diag["location"]["row"])
        last = int((diag.get("end_location") or diag["location"])["row"])
        # A diagnostic counts when any line it covers was added by this diff.
        if not rows or not any(r in rows for r in range(first, last + 1)):
            continue
        if len(out) >= MAX_FINDINGS:
            extra += 1
            continue
        code = str(diag.get("code") or "invalid-syntax")
        out.append(
            Finding(
                rule=f"ruff:{code}",
                message=f"{code} {diag.get('message', '')}",
                severity=severity,
                policy=NAME,
                file=path,
                line=first,
            )
        )
    if extra:
        out.append(
            Finding(
                rule="ruff:more",
                message=f"{extra} more ruff diagnostics on added lines",
                severity=severity,
                policy=NAME,
            )
        )
    return out


def _position(diag: Diagnostic) -> tuple[str, int, int]:
    loc = diag.get("location") or {"row": 0, "column": 0}
    return (str(diag.get("filename", "")), int(loc["row"]), int(loc["column"]))
