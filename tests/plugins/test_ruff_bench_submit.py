"""``bench/bench_submit.py --short`` runs, so the benchmark does not rot (no speed asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_submit.py"


def test_bench_submit_runs_short() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--short"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr  # 1: an answer lacked a check
    assert "non-Python diffs (baseline)" in done.stdout
    assert "Python diffs (ruff policy)" in done.stdout
    assert "Python / non-Python diffs:" in done.stdout
