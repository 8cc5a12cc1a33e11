"""Artifacts: one JSON and one Markdown file per suggestion and per plan.

They live under the data directory's ``suggestions/`` and ``plans/`` and nowhere
else: file names come only from validated ids, and every path is checked to stay
inside its folder before anything is written. Writes are atomic (temp + rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import anyio

from storykit.errors import Invalid
from storykit.ids import check_id
from storykit.models import Plan, Suggestion, to_dict

__all__ = ["ArtifactWriter"]


class ArtifactWriter:
    def __init__(self, suggestions_dir: Path, plans_dir: Path) -> None:
        self.suggestions_dir = suggestions_dir
        self.plans_dir = plans_dir

    async def write(self, suggestions: Sequence[Suggestion], plans: Sequence[Plan]) -> None:
        """Write every artifact of one change in a single trip to a worker thread."""
        await anyio.to_thread.run_sync(self._write_all, suggestions, plans)

    def _write_all(self, suggestions: Sequence[Suggestion], plans: Sequence[Plan]) -> None:
        for s in suggestions:
            self._write_suggestion(s)
        for p in plans:
            self._write_plan(p)

    def _write_suggestion(self, s: Suggestion) -> None:
        base = _inside(self.suggestions_dir, check_id(s.id, "sug"))
        _atomic_write(base.with_suffix(".json"), json.dumps(to_dict(s), indent=2) + "\n")
        findings = "\n".join(
            f"- **{f.severity}** `{f.rule}` {_where(f.file, f.line)} — {f.message}"
            for f in s.findings
        )
        md = (
            f"# {s.title}\n\n"
            f"- id: `{s.id}`\n- status: {s.status}\n- risk: {s.risk}\n"
            f"- source: {s.source} (agent `{s.agent}`)\n- revision: {s.revision}\n\n"
            f"## Rationale\n\n{s.rationale or '_none given_'}\n\n"
            f"## Findings\n\n{findings or '_none_'}\n\n"
            f"## Diff\n\n```diff\n{s.diff}\n```\n"
        )
        _atomic_write(base.with_suffix(".md"), md)

    def _write_plan(self, plan: Plan) -> None:
        base = _inside(self.plans_dir, check_id(plan.id, "plan"))
        _atomic_write(base.with_suffix(".json"), json.dumps(to_dict(plan), indent=2) + "\n")
        parts = [f"# Plan: {plan.goal}\n\n- id: `{plan.id}`\n- selected: {plan.selected or '—'}\n"]
        for v in plan.variants:
            parts.append(
                f"\n## {v.title} (`{v.key}`)\n\n- risk: {v.risk}\n"
                f"- suggestions: {', '.join(v.suggestion_ids) or '—'}\n"
                f"- conflicts: {len(v.conflicts)}\n\n```diff\n{v.diff}\n```\n"
            )
        _atomic_write(base.with_suffix(".md"), "".join(parts))


def _where(file: str | None, line: int | None) -> str:
    return f"{file or ''}{':' + str(line) if line else ''}"


def _inside(folder: Path, name: str) -> Path:
    folder = folder.resolve()
    path = (folder / name).resolve()
    if path.parent != folder:
        raise Invalid(f"artifact name {name!r} leaves {folder}")
    return path


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
