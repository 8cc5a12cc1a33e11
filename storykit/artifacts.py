"""Artifacts: one JSON and one Markdown file per suggestion and per plan.

They live under the data directory's ``suggestions/`` and ``plans/`` and nowhere
else: file names come only from validated ids, and every path is checked to stay
inside its folder before anything is written. Writes are atomic (temp + rename).

They are written off the commit path (:meth:`ArtifactWriter.submit`): a change is
stored and answered first, and a background task (:meth:`ArtifactWriter.run`)
writes its files afterwards, retrying a failed write a few times. A disk error
therefore never turns a stored change into an error reply (after which a retry by
the client would store it twice); it is logged and counted
(``storykit_artifact_write_failures_total``), and the next change of the same
suggestion or plan writes its files again. Several changes of one object waiting
together are written once, newest first wins.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio

from storykit.errors import Invalid
from storykit.ids import check_id
from storykit.models import Plan, Suggestion, to_dict

__all__ = ["RETRY_DELAYS", "ArtifactWriter"]

RETRY_DELAYS = (0.2, 1.0, 5.0)
"""Seconds before each retry of a failed write; after the last, the write is given up."""

log = logging.getLogger("storykit.artifacts")


class ArtifactWriter:
    """Writes artifacts after the commit: :meth:`submit` queues, :meth:`run` writes."""

    def __init__(
        self,
        suggestions_dir: Path,
        plans_dir: Path,
        *,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        on_failure: Callable[[str], None] | None = None,
    ) -> None:
        self.suggestions_dir = suggestions_dir
        self.plans_dir = plans_dir
        self.retry_delays = tuple(retry_delays)
        self.on_failure = on_failure
        """Called with ``"suggestion"`` or ``"plan"`` for each write given up."""
        self._pending: dict[str, Suggestion | Plan] = {}
        self._writing = False
        self._running = False
        self._wakeup: anyio.Event | None = None
        self._settled: anyio.Event | None = None

    def submit(self, suggestions: Sequence[Suggestion], plans: Sequence[Plan]) -> None:
        """Queue the artifacts of a committed change; returns at once."""
        items: list[Suggestion | Plan] = [*suggestions, *plans]
        for item in items:
            self._pending.pop(item.id, None)  # re-queued at the end: written in commit order
            self._pending[item.id] = item
        if self._pending and self._wakeup is not None:
            self._wakeup.set()

    async def run(self) -> None:
        """Write what is queued, as it comes, until cancelled."""
        self._running = True
        try:
            while True:
                if not self._pending:
                    self._wakeup = anyio.Event()
                    await self._wakeup.wait()
                await self._write_pending()
        finally:
            self._running = False

    async def flush(self) -> None:
        """Return once everything queued so far is written (or given up). Without a
        running :meth:`run` task, write it here."""
        while self._pending or self._writing:
            if not self._running and not self._writing:
                await self._write_pending()
                continue
            if self._settled is None:
                self._settled = anyio.Event()
            await self._settled.wait()

    async def _write_pending(self) -> None:
        batch = list(self._pending.values())
        self._pending.clear()
        self._writing = True
        try:
            for delay in (*self.retry_delays, None):
                batch = await anyio.to_thread.run_sync(self._write_all, batch)
                if not batch:
                    break
                if delay is None:
                    for item in batch:
                        kind = "suggestion" if isinstance(item, Suggestion) else "plan"
                        log.error("gave up writing the artifacts of %s %s", kind, item.id)
                        if self.on_failure is not None:
                            self.on_failure(kind)
                    break
                await anyio.sleep(delay)
        finally:
            self._writing = False
            if self._settled is not None and not self._pending:
                self._settled.set()
                self._settled = None

    def _write_all(self, items: Sequence[Suggestion | Plan]) -> list[Suggestion | Plan]:
        """Write each item's files in this worker thread; return the ones that failed."""
        failed: list[Suggestion | Plan] = []
        for item in items:
            try:
                if isinstance(item, Suggestion):
                    self._write_suggestion(item)
                else:
                    self._write_plan(item)
            except OSError as exc:
                log.warning("could not write the artifacts of %s: %s", item.id, exc)
                failed.append(item)
        return failed

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
