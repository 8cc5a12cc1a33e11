"""Benchmark: the ``ruff`` source's ``generate()`` against ``ruff check`` alone.

The installed standard library's ``*.py`` files (without its test suites unless
``--with-tests``) are copied into a fresh git repository and committed; then
both are timed on it, best of ``--repeat`` runs each, in the same process:

- ``generate()``: export of HEAD, one ruff run, one suggestion per file and rule;
- ``ruff check`` with the same rule selection, as a person would run it.

Run from the repository root::

    PYTHONPATH=plugins:. .venv/bin/python bench/bench_generate.py [--repeat 3] [--with-tests]

The goal is a ratio of at most 1.3.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio

from storykit.backends import GenerateRequest
from storykit_plugins.ruff import DEFAULT_SELECT, RuffSource

TEST_DIRS = {"test", "tests", "idle_test"}


def copy_stdlib(dest: Path, *, with_tests: bool) -> int:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    count = 0
    for path in stdlib.rglob("*.py"):
        rel = path.relative_to(stdlib)
        if rel.parts[0] == "site-packages" or (not with_tests and TEST_DIRS & set(rel.parts)):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        count += 1
    return count


def git(repo: Path, *args: str) -> None:
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run(["git", *ident, *args], cwd=repo, check=True, capture_output=True)


def best_of(repeat: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--with-tests", action="store_true", help="include the stdlib's tests")
    parser.add_argument("--short", action="store_true", help="one repeat: does it still run")
    args = parser.parse_args()
    if args.short:
        args.repeat = 1

    with tempfile.TemporaryDirectory(prefix="storykit-bench-") as tmp:
        repo = Path(tmp) / "stdlib"
        repo.mkdir()
        files = copy_stdlib(repo, with_tests=args.with_tests)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "stdlib")
        source = RuffSource()
        drafts: list[object] = []

        def generate() -> None:
            drafts[:] = anyio.run(source.generate, GenerateRequest(repo_path=repo))

        ruff = [*source.ruff.command, "check", "--no-cache", "--isolated", "--exit-zero"]
        ruff += ["--select", ",".join(DEFAULT_SELECT), "."]

        def ruff_check() -> None:
            subprocess.run(ruff, cwd=repo, check=True, capture_output=True)

        ruff_check()  # warm the file cache for both
        t_generate = best_of(args.repeat, generate)
        t_ruff = best_of(args.repeat, ruff_check)

    print(f"python {sys.version.split()[0]}, stdlib files: {files}")
    print(f"suggestions: {len(drafts)}")
    print(f"ruff check alone:   {t_ruff:7.3f} s")
    print(f"source.generate():  {t_generate:7.3f} s")
    print(f"ratio: {t_generate / t_ruff:.2f}x (goal <= 1.3x)")


if __name__ == "__main__":
    main()
