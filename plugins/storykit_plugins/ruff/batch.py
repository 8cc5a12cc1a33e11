"""Concurrent checks share one ruff run.

Starting ruff costs more than checking a file, so the ``ruff`` policy does not start one
per diff: while a run is going, the checks that arrive wait, and the next run takes
them all (up to :data:`MOST`), each in a folder of its own with its configuration files,
so ruff reads each with its own repository's settings. With one check at a time this is
exactly one run per check, with no waiting added; under load the runs get fuller, not
more frequent. The check that finds no run going leads the next one; if it is cancelled
(its own timeout), the checks it carried go back into the queue for the next leader.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import anyio.to_thread

from storykit_plugins.ruff import export
from storykit_plugins.ruff.fixes import export_roots, relative
from storykit_plugins.ruff.tool import Diagnostic, Ruff

__all__ = ["MOST", "Batches"]

MOST = 64
"""Checks one run takes at most."""


@dataclasses.dataclass(eq=False, kw_only=True)
class _Check:
    options: tuple[str, ...]
    files: Mapping[str, str]  # path → text: the configuration files and the files to check
    targets: tuple[str, ...]
    done: anyio.Event = dataclasses.field(default_factory=anyio.Event)
    result: list[Diagnostic] = dataclasses.field(default_factory=list)
    error: Exception | None = None


class Batches:
    """One ruff run at a time, for every check waiting when it starts."""

    def __init__(self, ruff: Ruff) -> None:
        self.ruff = ruff
        self.runs = 0
        """How many ruff runs so far (for tests and the benchmark's curiosity)."""
        self._waiting: list[_Check] = []
        self._running = False
        self._ended: anyio.Event | None = None

    async def check(
        self, files: Mapping[str, str], targets: Sequence[str], options: Sequence[str]
    ) -> list[Diagnostic]:
        """ruff's diagnostics for ``targets`` among ``files`` (path → text, configuration
        files included), their ``filename`` made repository-relative."""
        job = _Check(options=tuple(options), files=dict(files), targets=tuple(targets))
        self._waiting.append(job)
        try:
            while not job.done.is_set():
                if not self._running:
                    await self._lead()
                elif self._ended is not None:
                    await self._ended.wait()
        finally:
            if job in self._waiting:
                self._waiting.remove(job)  # cancelled while waiting
        if job.error is not None:
            raise job.error
        return job.result

    async def _lead(self) -> None:
        self._running = True
        self._ended = ended = anyio.Event()
        batch, self._waiting = self._waiting[:MOST], self._waiting[MOST:]
        try:
            groups: dict[tuple[str, ...], list[_Check]] = {}
            for job in batch:
                groups.setdefault(job.options, []).append(job)
            async with anyio.create_task_group() as tg:
                for options, jobs in groups.items():
                    tg.start_soon(self._run, list(options), jobs)
        except BaseException:
            self._waiting[:0] = [j for j in batch if not j.done.is_set()]
            raise
        finally:
            self._running = False
            ended.set()

    async def _run(self, options: list[str], jobs: list[_Check]) -> None:
        self.runs += 1
        size = sum(len(text) for job in jobs for text in job.files.values())
        try:
            async with export.Scratch(self.ruff.scratch_dir, size) as scratch:
                await anyio.to_thread.run_sync(_write, scratch, jobs)
                targets = [f"{n}/{t}" for n, job in enumerate(jobs) for t in job.targets]
                found = await self.ruff.check(scratch, targets, options)
                roots = [export_roots(scratch / str(n)) for n in range(len(jobs))]
        except Exception as exc:
            for job in jobs:
                job.error = exc
                job.done.set()
            return
        for diag in found:
            for job, job_roots in zip(jobs, roots, strict=True):
                path = relative(diag.get("filename"), job_roots)
                if path is not None:
                    job.result.append({**diag, "filename": path})
                    break
        for job in jobs:
            job.done.set()


def _write(root: Path, jobs: Sequence[_Check]) -> None:
    for n, job in enumerate(jobs):
        folder = root / str(n)
        for path, text in job.files.items():
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", newline="")
