"""From ruff's diagnostics to drafts: pure, no I/O.

ruff reports each fix as edits (rows and columns, 1-based, counting characters);
these are applied here per file and rule in the order and with the overlap rules
of ``ruff --fix``, and written as a git diff against the commit ruff read.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from storykit.backends import Draft
from storykit.gitdiff import Edit, Lines, apply_edits, blob_id, file_diff, header
from storykit_plugins._git import TreeEntry
from storykit_plugins.ruff.tool import Diagnostic

__all__ = ["RULES_URL", "Context", "drafts", "export_roots", "relative"]

RULES_URL = "https://docs.astral.sh/ruff/rules/"
_RUFF_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # ruff's rows end at any of these


def _no_report(done: int, total: int) -> None:
    pass


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Context:
    """What the drafts are made against, and where ruff saw the files."""

    commit: str
    algorithm: str = "sha1"
    """The repository's object hash (``sha1`` or ``sha256``), for the diffs' index lines."""
    roots: tuple[str, ...]
    """The export folder's absolute names (:func:`export_roots`)."""
    report: Callable[[int, int], None] = _no_report
    """Called with (done, total) about twenty times while the drafts are made."""


def export_roots(root: Path) -> tuple[str, ...]:
    """The names ruff may give the export folder: as given, and with symlinks resolved."""
    return tuple(dict.fromkeys([str(root), str(root.resolve())]))


def relative(filename: object, roots: Sequence[str]) -> str | None:
    """The repository path of a file ruff names by its absolute path in the export."""
    if isinstance(filename, str):
        for root in roots:
            prefix = root + os.sep
            if filename.startswith(prefix):
                return filename[len(prefix) :].replace(os.sep, "/")
    return None


def drafts(
    diagnostics: Sequence[Diagnostic],
    texts: Mapping[str, str],
    sources: Mapping[str, TreeEntry],
    context: Context,
) -> list[Draft]:
    """One draft per file and rule from ruff's safe fixes among ``diagnostics``.

    ``texts`` holds the exported files' texts and ``sources`` their tree entries, by
    path; a file's fixes are applied as ``ruff --fix`` would (in order, an overlapping
    fix left for the next run) and written as a diff against ``context.commit``.
    """
    groups: dict[tuple[str, str], list[Diagnostic]] = {}
    for diag in diagnostics:
        fix = diag.get("fix")
        code = diag.get("code")
        if not code or not isinstance(fix, Mapping) or fix.get("applicability") != "safe":
            continue
        path = relative(diag.get("filename"), context.roots)
        if path is None or path not in sources:
            continue
        groups.setdefault((path, str(code)), []).append(diag)
    drafts: list[Draft] = []
    total = len(groups)
    step = max(1, total // 20)  # each report is an event: about twenty per run
    lines: dict[str, tuple[Lines, list[int]]] = {}
    for n, ((path, code), diags) in enumerate(sorted(groups.items()), start=1):
        if path not in lines:
            split = Lines(texts[path])
            lines[path] = (split, _ruff_row_starts(split))
        draft = _draft(path, code, diags, lines[path], sources[path], context)
        if draft is not None:
            drafts.append(draft)
        if n % step == 0 or n == total:
            context.report(n, total)
    return drafts


def _ruff_row_starts(lines: Lines) -> list[int]:
    if "\r" not in lines.text:
        return lines.starts  # without carriage returns, ruff's rows are git's lines
    return [0, *(m.end() for m in _RUFF_LINE_BREAK.finditer(lines.text))]


def _offset(location: Mapping[str, int], starts: list[int], text: str) -> int:
    # ruff's rows and columns are 1-based and count characters, as Python strings do,
    # but ruff does not count a byte order mark: the first row starts after it.
    row = int(location["row"]) - 1
    if row >= len(starts):
        return len(text)
    bom = 1 if row == 0 and text.startswith("\ufeff") else 0
    return min(starts[row] + bom + int(location["column"]) - 1, len(text))


def _draft(
    path: str,
    code: str,
    diags: list[Diagnostic],
    base: tuple[Lines, list[int]],
    entry: TreeEntry,
    context: Context,
) -> Draft | None:
    lines, starts = base
    old = lines.text
    fixes: list[tuple[list[Edit], Diagnostic]] = []
    for diag in diags:
        edits = sorted(
            (
                Edit(
                    _offset(e["location"], starts, old),
                    _offset(e["end_location"], starts, old),
                    str(e["content"]),
                )
                for e in diag["fix"]["edits"]
            ),
            key=lambda e: (e.start, e.end),
        )
        if edits and all(a.end <= b.start for a, b in itertools.pairwise(edits)):
            fixes.append((edits, diag))
    fixes.sort(key=lambda f: (f[0][0].start, f[0][-1].end))
    chosen: list[Edit] = []
    applied: set[Edit] = set()
    fixed: list[Diagnostic] = []
    deferred = 0
    last_end = -1
    for edits, diag in fixes:
        if all(e in applied for e in edits):
            fixed.append(diag)  # the same fix serves several diagnostics (one import statement)
        elif edits[0].start <= last_end:
            deferred += 1  # like ruff --fix: an overlapping fix waits for the next run
        else:
            chosen.extend(edits)
            applied.update(edits)
            last_end = max(e.end for e in edits)
            fixed.append(diag)
    new, regions = apply_edits(old, chosen)
    if new == old:
        return None
    post = blob_id(new.encode("utf-8"), context.algorithm)
    diff = header(path, index=f"{entry.oid}..{post} {entry.mode}") + file_diff(lines, new, regions)
    return Draft(
        title=_title(code, path, fixed),
        diff=diff,
        rationale=_rationale(code, fixed, deferred),
        base_ref=context.commit,
        metadata={
            "rule": code,
            "rule_name": str(fixed[0].get("name") or ""),
            "file": path,
            "fixes": len(fixed),
            "lines": sorted({int(d["location"]["row"]) for d in fixed}),
            "commit": context.commit,
        },
    )


def _title(code: str, path: str, fixed: Sequence[Diagnostic]) -> str:
    messages = {str(d.get("message", "")) for d in fixed}
    if len(fixed) == 1 or len(messages) == 1:
        what = messages.pop()
    else:
        fix_messages = {str(d["fix"].get("message") or "") for d in fixed}
        what = fix_messages.pop() if len(fix_messages) == 1 else str(fixed[0].get("name", ""))
    places = f" ({len(fixed)} places)" if len(fixed) > 1 else ""
    return f"ruff {code}: {what or code} in {path}{places}"


def _rationale(code: str, fixed: Sequence[Diagnostic], deferred: int) -> str:
    shown = sorted(fixed, key=lambda d: int(d["location"]["row"]))
    out = [f"Line {d['location']['row']}: {d.get('message', '')}" for d in shown[:20]]
    if len(shown) > 20:
        out.append(f"… and {len(shown) - 20} more")
    name = str(fixed[0].get("name") or "")
    url = str(fixed[0].get("url") or f"{RULES_URL}{name}")
    out.append("")
    out.append(f"ruff rule {code} ({name}), safe automatic fix: {url}")
    if deferred:
        out.append(
            f"{deferred} more place(s) overlap these edits; ruff proposes them again "
            "once this change is in."
        )
    return "\n".join(out)
