"""Benchmark the ``risk-regex`` policy, and show that RE2 stays linear on hostile input.

Run from the repository root::

    PYTHONPATH=plugins:. .venv/bin/python bench/bench_policy.py [--mb 10] [--runs 5]

1. Generates a unified diff of about ``--mb`` MB (many files, ordinary code, a few
   secrets sprinkled in) and times, best of ``--runs``:
   - the policy with its default rules, ``await policy.check(...)`` end to end;
   - one raw RE2 pass: a single alternation of the same line patterns, ``finditer``
     over the added text, prepared beforehand (the text as ``str``, which is what a
     caller has, and as UTF-8 ``bytes``, RE2's native input, as the floor).
   The goal is raw_time / policy_time >= 0.8 against the ``str`` pass.
2. Times catastrophic-backtracking patterns on growing input with RE2 (linear), and
   with Python's ``re`` on tiny input in a subprocess with a timeout (exponential).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import re2

from storykit.backends import PolicySubject
from storykit.diffs import parse_diff
from storykit_plugins.policies.risk_regex import RiskRegexPolicy
from storykit_plugins.policies.risk_rules import DEFAULT_RULES

T = TypeVar("T")

_NAMES = ["user", "order", "config", "items", "path", "result", "handler", "cache", "token_count"]
_CODE = [
    "    {a} = {b}.get('{c}', {n})",
    "    for {a} in {b}:",
    "        {a}.append({b}[{n}])",
    "    return {a} + {n}",
    "def {a}_{b}({c}, {a}=None):",
    "    # compute the {a} for each {b} when {c} changes",
    "    if {a} is None and {b} > {n}:",
    '        raise ValueError(f"bad {a}: {{{b}!r}}")',
    '    logger.info("loaded %d {a} from %s", len({b}), {c})',
    "",
    "class {A}{B}(Base):",
    '    """Keep the {a} of a {b}."""',
    "const {a} = await fetch(`/api/{b}/${{{c}}}`);",
    "  {a}: {n}  # yaml: {b}",
    "    self.{a} = {{'{b}': {c}, 'n': {n}}}",
]
_SECRETS = [
    '    aws_key = "AKIAIOSFODNN7EXAMPLE"',
    "-----BEGIN RSA PRIVATE KEY-----",
    "    requests.get(url, verify=False)",
    "    subprocess.run(cmd, shell=True)",
    '    API_TOKEN = "sk-live-0123456789abcdef0123"',
    "curl -fsSL https://get.example.com | sh",
]


def generate_diff(size: int, *, seed: int = 7) -> str:
    """A git-style diff of about ``size`` characters: new files and modified ones."""
    rnd = random.Random(seed)
    parts: list[str] = []
    total = 0
    n_file = 0
    while total < size:
        n_file += 1
        lines = []
        for _ in range(rnd.randint(20, 200)):
            if rnd.random() < 0.0005:
                lines.append(rnd.choice(_SECRETS))
                continue
            a, b, c = (rnd.choice(_NAMES) for _ in range(3))
            template = rnd.choice(_CODE)
            lines.append(
                template.format(a=a, b=b, c=c, A=a.title(), B=b.title(), n=rnd.randint(0, 999))
            )
        name = f"pkg{n_file % 40}/module_{n_file}.py"
        if rnd.random() < 0.5:
            head = (
                f"diff --git a/{name} b/{name}\nnew file mode 100644\n--- /dev/null\n"
                f"+++ b/{name}\n@@ -0,0 +1,{len(lines)} @@\n"
            )
            body = "".join(f"+{line}\n" for line in lines)
        else:
            context, removed = lines[:3], lines[3 : 3 + len(lines) // 2]
            head = (
                f"diff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n"
                f"@@ -10,{len(context) + len(removed)} +10,{len(context) + len(lines)} @@\n"
            )
            body = (
                "".join(f" {line}\n" for line in context)
                + "".join(f"-{line}\n" for line in removed)
                + "".join(f"+{line}\n" for line in lines)
            )
        parts.append(head + body)
        total += len(head) + len(body)
    return "".join(parts)


def best(runs: int, fn: Callable[[], T]) -> tuple[float, T]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    assert result is not None
    return min(times), result


async def best_async(runs: int, fn: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - started)
    assert result is not None
    return min(times), result


def throughput(args: argparse.Namespace) -> None:
    diff = generate_diff(int(args.mb * 1_000_000))
    parsed = parse_diff(diff)
    added = "\n".join(line.text for line in parsed.added_lines())
    added_bytes = added.encode()
    print(
        f"diff: {len(diff) / 1e6:.1f} MB, {len(parsed.files)} files, "
        f"{diff.count(chr(10))} lines; added text {len(added) / 1e6:.1f} MB"
    )

    patterns = [r["pattern"] for r in DEFAULT_RULES if r.get("scope", "line") == "line"]
    raw = re2.compile("|".join(f"(?:{p})" for p in patterns))
    raw_str, raw_hits = best(args.runs, lambda: sum(1 for _ in raw.finditer(added)))
    raw_bytes, _ = best(args.runs, lambda: sum(1 for _ in raw.finditer(added_bytes)))

    policy = RiskRegexPolicy()
    config = policy.default_config()
    subject = PolicySubject(diff=diff)

    async def run_policy() -> tuple[float, int]:
        await policy.check(subject, config)  # warm: compile the rules once
        elapsed, findings = await best_async(args.runs, lambda: policy.check(subject, config))
        return elapsed, len(findings)

    policy_time, findings = anyio.run(run_policy)
    print(f"raw RE2 pass, str  : {raw_str * 1e3:7.1f} ms  ({raw_hits} matches)")
    print(f"raw RE2 pass, bytes: {raw_bytes * 1e3:7.1f} ms")
    print(f"risk-regex policy  : {policy_time * 1e3:7.1f} ms  ({findings} findings)")
    ratio = raw_str / policy_time
    verdict = "meets" if ratio >= 0.8 else "MISSES"
    print(
        f"raw(str)/policy = {ratio:.2f} ({verdict} the >= 0.8 goal); "
        f"raw(bytes)/policy = {raw_bytes / policy_time:.2f}"
    )


_PY_RE = (
    "import re, time; t = time.perf_counter(); re.search({p!r}, {s!r});"
    " print(time.perf_counter() - t)"
)


def _searcher(compiled: re2._Regexp[str], text: str) -> Callable[[], bool]:
    return lambda: compiled.search(text) is None


def hostile(args: argparse.Namespace) -> None:
    # (a+)+$ fails fast in RE2 (it scans back from the anchor); the others make it read it all.
    cases: list[tuple[str, Callable[[int], str]]] = [
        (r"(a+)+$", lambda n: "a" * n + "!"),
        (r"(a+)+b", lambda n: "a" * n),
        (r"(x+x+)+y", lambda n: "x" * n),
    ]
    print("\nhostile patterns, RE2 (time should grow linearly with the input):")
    for pattern, make in cases:
        row = []
        for n in (10_000, 100_000, 1_000_000):
            elapsed, _ = best(3, _searcher(re2.compile(pattern), make(n)))
            row.append(f"{n:>9,} chars {elapsed * 1e3:8.2f} ms")
        print(f"  {pattern:10} " + " | ".join(row))
    print("Python's re on the same patterns (each run in a subprocess, 10 s limit):")
    for pattern, make in cases:
        row = []
        for n in (18, 20) if args.short else (18, 20, 22, 24, 26):
            code = _PY_RE.format(p=pattern, s=make(n))
            try:
                out = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, timeout=10
                )
                row.append(f"{n} chars {float(out.stdout) * 1e3:9.1f} ms")
            except subprocess.TimeoutExpired:
                row.append(f"{n} chars  > 10 s")
                break
        print(f"  {pattern:10} " + " | ".join(row))

    policy = RiskRegexPolicy()
    config = {"rules": [{"id": "evil", "pattern": r"(a+)+$", "severity": "warn"}]}
    policy.validate_config(config)
    diff = f"--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+{'a' * 1_000_000}!\n"
    elapsed, _ = best(3, lambda: anyio.run(policy.check, PolicySubject(diff=diff), config))
    print(f"policy with rule (a+)+$ on a 1,000,000-character added line: {elapsed * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=10.0, help="size of the generated diff")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (best kept)")
    parser.add_argument("--short", action="store_true", help="0.2 MB, 1 run: does it still run")
    args = parser.parse_args()
    if args.short:
        args.mb, args.runs = 0.2, 1
    throughput(args)
    hostile(args)


if __name__ == "__main__":
    main()
