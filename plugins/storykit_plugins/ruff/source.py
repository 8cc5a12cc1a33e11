"""The ``ruff`` suggestion source: ruff's safe automatic fixes, one draft per file and rule.

ruff runs on the files as committed at ``HEAD``, exported into a temporary folder, so
every suggestion is a diff against ``HEAD`` that applies to a clean checkout whatever
state the user's working tree is in. ruff runs once over all files; its JSON output
carries each fix's edits, which :mod:`.fixes` applies per file and rule, so the cost is
one ruff run plus writing the diffs.
"""

from __future__ import annotations

import anyio
import anyio.from_thread
import anyio.to_thread

from storykit.backends import Draft, GenerateRequest, Progress
from storykit.diffs import safe_repo_path
from storykit.settings import Settings
from storykit_plugins._git import ls_tree, object_format, read_blobs, repo_root
from storykit_plugins.ruff import export, fixes
from storykit_plugins.ruff.tool import Ruff

__all__ = ["RuffSource"]


class _Reporter:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    async def __call__(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            await self.progress({"source": "ruff", "stage": stage, "done": done, "total": total})

    def fixing(self, done: int, total: int) -> None:
        """From the worker thread that makes the drafts."""
        if self.progress is not None:
            anyio.from_thread.run(self, "fix", done, total)


class RuffSource:
    """Proposes ruff's safe fixes of the files committed at ``HEAD``."""

    name = "ruff"

    def __init__(self, ruff: Ruff | None = None) -> None:
        self.ruff = ruff or Ruff()

    @classmethod
    def from_settings(cls, settings: Settings) -> RuffSource:
        return cls(Ruff.from_settings(settings))

    async def generate(self, request: GenerateRequest) -> list[Draft]:
        report = _Reporter(request.progress)
        paths = tuple(safe_repo_path(p) for p in request.paths)
        repo = await repo_root(request.repo_path)
        commit = await export.head(repo)
        algorithm = await object_format(repo)
        entries = await ls_tree(repo, commit)
        files = export.python_files(entries, paths, commit)
        configs = [e for e in entries if export.is_config(e)]
        await report("export", 0, len(files))
        blobs = await read_blobs(repo, (e.oid for e in [*files, *configs]))
        size = sum(map(len, blobs.values()))
        async with export.Scratch(self.ruff.scratch_dir, size) as scratch:
            tree = scratch / "tree"
            texts = await export.export(tree, [*files, *configs], blobs)
            config_texts = {e.path: texts.pop(e.path, "") for e in configs}
            sources = {e.path: e for e in files if e.path in texts}
            await report("export", len(sources), len(files))
            if not sources:
                return []
            await report("check", 0, len(sources))
            options = await self.ruff.options(config_texts, only_fixable=True)
            diagnostics = await self.ruff.check(tree, ["."], options)
            await report("check", len(sources), len(sources))
            context = fixes.Context(
                commit=commit,
                algorithm=algorithm,
                roots=fixes.export_roots(tree),
                report=report.fixing,
            )
            return await anyio.to_thread.run_sync(
                fixes.drafts, diagnostics, texts, sources, context
            )
