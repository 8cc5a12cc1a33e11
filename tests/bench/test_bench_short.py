"""Every benchmark runs once in its short mode, so none of them rots between measurements.

Each ``bench/bench_*.py`` is found by name (a new benchmark is covered the day it lands)
and must take ``--short``, finish, and print a ratio against a baseline it measured in the
same run. Nothing here asserts a speed: a short run on a shared machine says nothing
about one, only that the benchmark still works.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
BENCHMARKS = sorted(BENCH.glob("bench_*.py"))
# A ratio as every benchmark prints one: "0.42x", "1.3x", "= 1.22".
RATIO = re.compile(r"\d+\.\d+x|/\S* = \d+\.\d+")


def test_the_benchmarks_are_found() -> None:
    assert len(BENCHMARKS) >= 7, BENCHMARKS


@pytest.mark.slow
@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_a_benchmark_runs_in_short_mode_and_prints_a_ratio(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--short"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCH.parent,
    )
    assert done.returncode == 0, f"{script.name} --short failed:\n{done.stdout}\n{done.stderr}"
    assert RATIO.search(done.stdout), f"{script.name} printed no ratio:\n{done.stdout}"
