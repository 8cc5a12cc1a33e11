"""Agent submissions: ``POST /suggestions`` from many concurrent agents, ruff policy on.

    python bench/bench_submit.py                      # 50 agents, 10 s per kind after 3 s warm-up
    python bench/bench_submit.py --short              # a few agents for a second: does it run?

A real git repository is made in a temporary folder (``--modules`` Python modules and as
many Markdown pages, committed) and ``storykit serve`` (one worker, asyncio) is started on
it with the first-party plugins, the default policy document and its own key for every
agent. Each agent is one keep-alive connection that posts a suggestion, waits for the
answer and posts the next, so ``--agents`` requests are in flight at any time. Two kinds,
each on a fresh server, in one run:

- ``text``: every diff changes a line of a Markdown page: the policies and the check that
  the diff applies to ``HEAD``, but no ruff: the baseline;
- ``python``: every diff changes a line of a Python module and adds an unused import, so
  the ruff policy has something to say (``ruff:F401`` on the added line).

Every answer is checked, not only counted: a 201 whose findings lack what the checks must
find (``ruff:F401`` for Python diffs; nothing denying for either) counts as a failure, so
a faster run cannot be bought by skipping a check. Printed per kind: submissions/s, p50
and p99 latency, the server's CPU (its own and its children's: git and ruff) and this
process's, the server's CPU milliseconds per submission (``CPU ms``: what each costs,
whatever else the machine is doing) and the Python/text ratio. The load generator is raw
asyncio streams in this process, so it costs little next to the server; its CPU is
printed to show that.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _servers import HOST, Server, free_port, machine_cpu_seconds, start_server, storykit_argv

KINDS = ("text", "python")
LABELS = {"text": "non-Python diffs (baseline)", "python": "Python diffs (ruff policy)"}
PLUGINS = "ruff,risk-regex,paths,hidden-text,opa,planner,dry-run"
GOAL_RATE = 200.0
GOAL_P99_MS = 250.0
LINES = 40  # per module and per page
DEADLINE = 60.0


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return float("nan")
    rank = max(1, round(p / 100 * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


# -- the repository ---------------------------------------------------------------------------
def module_text(n: int) -> str:
    body = "".join(f"VALUE_{k} = {k}\n" for k in range(LINES))
    return f'"""Module {n}."""\n\nfrom __future__ import annotations\n\n{body}'


def page_text(n: int) -> str:
    return f"# Page {n}\n\n" + "".join(f"Line {k} of page {n}.\n" for k in range(LINES))


def make_repo(root: Path, modules: int) -> Path:
    repo = root / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "docs").mkdir()
    (repo / "pkg" / "__init__.py").write_text("")
    for n in range(modules):
        (repo / "pkg" / f"mod{n}.py").write_text(module_text(n))
        (repo / "docs" / f"page{n}.md").write_text(page_text(n))
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "bench"\nrequires-python = ">=3.11"\n\n'
        '[tool.ruff.lint]\nselect = ["E", "F", "W", "I", "UP", "B"]\n'
    )
    ident = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(["git", *ident, *args], cwd=repo, check=True, capture_output=True)
    return repo


def python_diff(module: int, line: int, serial: int) -> str:
    """Line ``line`` of module ``module`` gets a new value, and an unused import arrives."""
    path = f"pkg/mod{module}.py"
    row = 5 + line  # the docstring, a blank line, the import, a blank line, then the values
    before = [f"VALUE_{k} = {k}\n" for k in range(max(0, line - 3), line)]
    after = [f"VALUE_{k} = {k}\n" for k in range(line + 1, min(LINES, line + 4))]
    start = row - len(before)
    hunk = (
        "".join(f" {t}" for t in before)
        + f"-VALUE_{line} = {line}\n"
        + f"+import json  # {serial}\n"
        + f"+VALUE_{line} = {line + serial}\n"
        + "".join(f" {t}" for t in after)
    )
    old_count = len(before) + 1 + len(after)
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -{start},{old_count} +{start},{old_count + 1} @@\n{hunk}"
    )


def text_diff(page: int, line: int, serial: int) -> str:
    path = f"docs/page{page}.md"
    row = 3 + line
    before = [f"Line {k} of page {page}.\n" for k in range(max(0, line - 3), line)]
    after = [f"Line {k} of page {page}.\n" for k in range(line + 1, min(LINES, line + 4))]
    start = row - len(before)
    hunk = (
        "".join(f" {t}" for t in before)
        + f"-Line {line} of page {page}.\n"
        + f"+Line {line} of page {page}, revised ({serial}).\n"
        + "".join(f" {t}" for t in after)
    )
    count = len(before) + 1 + len(after)
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -{start},{count} +{start},{count} @@\n{hunk}"
    )


# -- the agents -------------------------------------------------------------------------------
@dataclasses.dataclass
class Tally:
    done: list[tuple[float, float]] = dataclasses.field(default_factory=list)  # (end, seconds)
    failures: list[str] = dataclasses.field(default_factory=list)


def expected(kind: str, reply: dict[str, object]) -> str | None:
    """What is wrong with a 201 reply, or None: the checks must have run and found their due."""
    findings = reply.get("findings")
    if not isinstance(findings, list):
        return "no findings list"
    rules = {str(f.get("rule")) for f in findings if isinstance(f, dict)}
    if reply.get("status") != "pending":
        return f"status {reply.get('status')!r}, findings {sorted(rules)}"
    if kind == "python" and "ruff:F401" not in rules:
        return f"no ruff:F401 among {sorted(rules)}"
    return None


async def read_reply(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding":
            raise RuntimeError("chunked replies are not expected from POST /suggestions")
    return status, await reader.readexactly(length)


async def agent(
    n: int, kind: str, port: int, modules: int, stop_at: float, tally: Tally, key: str
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    serial = 0
    try:
        while time.monotonic() < stop_at:
            serial += 1
            target = (n * 7 + serial) % modules
            line = (n + serial * 3) % LINES
            make = python_diff if kind == "python" else text_diff
            body = json.dumps(
                {
                    "title": f"agent {n} change {serial}",
                    "diff": make(target, line, serial),
                    "rationale": "bench",
                }
            ).encode()
            request = (
                f"POST /suggestions HTTP/1.1\r\nHost: {HOST}:{port}\r\nX-API-Key: {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            started = time.monotonic()
            writer.write(request)
            status, payload = await read_reply(reader)
            ended = time.monotonic()
            if status != 201:
                tally.failures.append(f"{status}: {payload[:200]!r}")
                continue
            wrong = expected(kind, json.loads(payload))
            if wrong is not None:
                tally.failures.append(wrong)
                continue
            tally.done.append((ended, ended - started))
    finally:
        writer.close()


@dataclasses.dataclass(frozen=True)
class Result:
    kind: str
    rate: float
    p50_ms: float
    p99_ms: float
    count: int
    failures: int
    first_failure: str
    server_cpu: float  # cores, the server process itself
    children_cpu: float  # cores, git and ruff (children the server has waited for)
    client_cpu: float  # cores, this process
    other_cpu: float  # cores, anything else on the machine: noise

    @property
    def cpu_ms_each(self) -> float:
        """Server CPU (its own and its children's) per submission: less noisy than a rate
        on a shared machine, since it does not count the time the server waited for a core."""
        return (self.server_cpu + self.children_cpu) / self.rate * 1e3 if self.rate else 0.0


def server_times(server: Server) -> tuple[float, float]:
    """(own, waited-for children's) CPU seconds of the server process."""
    stat = Path(f"/proc/{server.pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


async def load(kind: str, server: Server, args: argparse.Namespace) -> Result:
    port = int(server.url.rsplit(":", 1)[1])
    warm = Tally()
    stop = time.monotonic() + args.warmup
    await asyncio.gather(
        *(
            agent(n, kind, port, args.modules, stop, warm, f"agentkey{n:04d}")
            for n in range(args.agents)
        )
    )
    tally = Tally()
    own0, kids0 = server_times(server)
    client0, busy0 = time.process_time(), machine_cpu_seconds()
    began = time.monotonic()
    stop = began + args.duration
    await asyncio.gather(
        *(
            agent(n, kind, port, args.modules, stop, tally, f"agentkey{n:04d}")
            for n in range(args.agents)
        )
    )
    wall = time.monotonic() - began
    own1, kids1 = server_times(server)
    client = time.process_time() - client0
    busy = machine_cpu_seconds() - busy0
    server.check_alive()
    latencies = sorted(seconds for _, seconds in tally.done)
    return Result(
        kind=kind,
        rate=len(latencies) / wall,
        p50_ms=percentile(latencies, 50) * 1e3,
        p99_ms=percentile(latencies, 99) * 1e3,
        count=len(latencies),
        failures=len(tally.failures) + len(warm.failures),
        first_failure=(warm.failures or tally.failures or [""])[0],
        server_cpu=(own1 - own0) / wall,
        children_cpu=(kids1 - kids0) / wall,
        client_cpu=client / wall,
        other_cpu=max(0.0, (busy - (own1 - own0) - (kids1 - kids0) - client) / wall),
    )


def environment(repo: Path, log: Path, agents: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "API_TOKENS": ",".join(f"agent{n}:agent=agentkey{n:04d}" for n in range(agents)),
            "RATE_LIMIT_RPS": "1000000",
            "RATE_LIMIT_BURST": "1000000",
            "STORYKIT_LOAD_PLUGINS": PLUGINS,
            "REPO_PATH": str(repo),
            "LOG_FILE": str(log),
        }
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=50, help="concurrent agents")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per kind")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before each")
    parser.add_argument("--modules", type=int, default=200, help="Python modules in the repo")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma separated")
    parser.add_argument("--short", action="store_true", help="a few agents for a second")
    args = parser.parse_args()
    if args.short:
        args.agents, args.duration, args.warmup, args.modules = 4, 1.0, 0.5, 10
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if set(kinds) - set(KINDS):
        parser.error(f"unknown kinds {sorted(set(kinds) - set(KINDS))}; choose from {KINDS}")

    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="storykit-bench-submit-") as tmp_name:
        tmp = Path(tmp_name)
        repo = make_repo(tmp, args.modules)
        for kind in kinds:
            port = free_port()
            env = environment(repo, tmp / f"{kind}.jsonl", args.agents)
            argv = storykit_argv(port, tmp / f"{kind}-data")
            log = tmp / f"{kind}.out"
            with start_server(kind, argv, port=port, log=log, env=env, timeout=DEADLINE) as server:
                results[kind] = asyncio.run(load(kind, server, args))
            print(f"  {LABELS[kind]:32} {results[kind].rate:>8.1f}/s", file=sys.stderr)

    print(
        f"{args.agents} agents, {args.duration:g} s after {args.warmup:g} s warm-up, one worker,"
        f" {os.cpu_count()} CPUs; plugins {PLUGINS}"
    )
    print(
        f"{'kind':32} {'subm/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'server':>7} {'git+ruff':>8}"
        f" {'CPU ms':>8} {'client':>7} {'other':>6} {'failed':>7}"
    )
    for kind in kinds:
        r = results[kind]
        print(
            f"{LABELS[kind]:32} {r.rate:>8.1f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f}"
            f" {r.server_cpu:>7.0%} {r.children_cpu:>8.0%} {r.cpu_ms_each:>8.1f}"
            f" {r.client_cpu:>7.0%}"
            f" {r.other_cpu:>6.0%} {r.failures:>7}"
        )
    for kind in kinds:
        if results[kind].failures:
            print(f"first failure ({kind}): {results[kind].first_failure}")
    if "python" in results and "text" in results:
        ratio = results["python"].rate / results["text"].rate
        print(f"Python / non-Python diffs: {ratio:.2f}x")
    if "python" in results:
        r = results["python"]
        met = r.rate >= GOAL_RATE and r.p99_ms < GOAL_P99_MS
        print(
            f"goal >= {GOAL_RATE:g}/s and p99 < {GOAL_P99_MS:g} ms for Python diffs:"
            f" {'met' if met else 'NOT met'} ({r.rate:.1f}/s, p99 {r.p99_ms:.0f} ms)"
        )
    if any(r.failures for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
