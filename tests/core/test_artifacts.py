"""Artifacts are written after the commit: a disk error never fails the change."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

import storykit.artifacts
from storykit.models import Status
from storykit.testing import AGENT, make_diff, open_core

pytestmark = pytest.mark.anyio

DIFF = make_diff("pkg/mod.py", "a = 1\n", "a = 2\n")


def _failures(core: object, kind: str) -> float:
    counter = core.metrics.artifact_failures.labels(kind=kind)  # type: ignore[attr-defined]
    return float(counter._value.get())


async def test_an_unwritable_artifact_folder_does_not_fail_the_submission(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_core(tmp_path) as core:
        folder = core.settings.suggestions_dir
        shutil.rmtree(folder)
        folder.write_text("a file where the folder should be\n")  # every write fails
        core.artifacts.retry_delays = (0.0, 0.0)
        with caplog.at_level(logging.WARNING, logger="storykit.artifacts"):
            s = await core.submit(AGENT, title="Bump a", diff=DIFF)
            assert s.status is Status.PENDING
            assert await core.get_suggestion(s.id) == s  # the change is stored and answered
            await core.artifacts.flush()
        assert _failures(core, "suggestion") == 1
        assert _failures(core, "plan") == 0
    tries = [r for r in caplog.records if "could not write the artifacts" in r.getMessage()]
    assert len(tries) == 3  # the first try and two retries
    assert any(
        f"gave up writing the artifacts of suggestion {s.id}" in r.getMessage()
        for r in caplog.records
    )


async def test_a_failed_write_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = storykit.artifacts._atomic_write
    calls: list[Path] = []

    def flaky(path: Path, text: str) -> None:
        calls.append(path)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        real(path, text)

    monkeypatch.setattr(storykit.artifacts, "_atomic_write", flaky)
    async with open_core(tmp_path) as core:
        core.artifacts.retry_delays = (0.0,)
        s = await core.submit(AGENT, title="Bump a", diff=DIFF)
        await core.artifacts.flush()
        stored = json.loads((core.settings.suggestions_dir / f"{s.id}.json").read_text())
        assert stored["id"] == s.id
        assert _failures(core, "suggestion") == 0
    assert len(calls) == 3  # json fails; then json and md


async def test_a_command_that_exits_right_after_its_change_leaves_its_artifacts(
    tmp_path: Path,
) -> None:
    async with open_core(tmp_path, run_observers=False) as core:  # as a CLI command opens it
        s = await core.submit(AGENT, title="Bump a", diff=DIFF)
        folder = core.settings.suggestions_dir
    assert (folder / f"{s.id}.md").read_text().startswith("# Bump a")


async def test_the_newest_state_of_a_suggestion_wins(tmp_path: Path) -> None:
    async with open_core(tmp_path) as core:
        s = await core.submit(AGENT, title="Bump a", diff=DIFF)
        revised = await core.revise(AGENT, s.id, diff=make_diff("pkg/mod.py", "a = 1\n", "a = 3\n"))
        await core.artifacts.flush()
        stored = json.loads((core.settings.suggestions_dir / f"{s.id}.json").read_text())
        assert stored["revision"] == revised.revision == 2
