"""Cold start of ``storykit --help`` against a bare ``python -c pass``, in the same run.

    .venv/bin/python bench/bench_cli.py [--runs 20] [--max-ratio 4]

Both are run alternately (so a busy machine slows both alike); the medians and
their ratio are printed. With ``--max-ratio`` the exit code is 1 above that ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _storykit_command() -> list[str]:
    """The installed console script next to this interpreter, as a user runs it."""
    script = Path(sys.executable).with_name("storykit")
    if script.exists():
        return [str(script), "--help"]
    found = shutil.which("storykit")
    if found:
        return [found, "--help"]
    return [sys.executable, "-m", "storykit_cli", "--help"]


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--max-ratio", type=float, default=None)
    parser.add_argument("--short", action="store_true", help="3 runs: does it still run")
    args = parser.parse_args(argv)
    if args.short:
        args.runs = 3
    baseline_cmd = [sys.executable, "-c", "pass"]
    storykit_cmd = _storykit_command()
    _time(baseline_cmd), _time(storykit_cmd)  # warm the file cache; not counted
    baseline: list[float] = []
    storykit: list[float] = []
    for _ in range(args.runs):
        baseline.append(_time(baseline_cmd))
        storykit.append(_time(storykit_cmd))
    base, cli = statistics.median(baseline), statistics.median(storykit)
    ratio = cli / base
    print(f"python -c pass   median {base * 1000:7.1f} ms over {args.runs} runs")
    print(f"storykit --help  median {cli * 1000:7.1f} ms over {args.runs} runs")
    print(
        f"ratio            {ratio:.2f}x"
        + (f" (goal <= {args.max_ratio:g}x)" if args.max_ratio else "")
    )
    if args.max_ratio is not None and ratio > args.max_ratio:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
