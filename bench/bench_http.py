"""Requests/s of storykit's authenticated JSON GETs vs plain Quart and bare ASGI, on Hypercorn.

    python bench/bench_http.py                       # 10 s per target after a 2 s warm-up
    python bench/bench_http.py --duration 3 --targets bare,quart,storykit-me
    python bench/bench_http.py --short               # every target once, 1 s: does it run

``wrk`` (apt: wrk) drives each server in turn with one thread and ``--connections``
keep-alive connections. The targets, all on Hypercorn 1 worker, asyncio, access log off,
bound to 127.0.0.1 exactly as ``storykit serve`` configures it:

- ``bare``: a raw ASGI callable answering the same 45-byte JSON body: the ceiling.
- ``quart``: a plain Quart app with one JSON route (it returns a dict, which Quart
  encodes, as storykit's routes do) and no hooks: what the framework costs.
- ``quart-bytes`` (only with ``--targets``): the same route returning a pre-encoded
  ``Response``: Quart without its JSON encoding.
- ``storykit-me``: ``storykit serve``, ``GET /me`` with ``X-API-Key``: the request pipeline
  (request id, key lookup, GCRA check, RateLimit headers, two metrics, one JSON log line)
  and a Quart route that answers from memory: what storykit adds to plain Quart.
- ``storykit``: the same pipeline for ``GET /policies``, whose route also reads SQLite.
- ``storykit-nolog``: the same with ``LOG_LEVEL=WARNING``, so the request log line is the
  only thing missing: what logging costs.
- ``storykit-uvloop``: ``storykit serve --worker uvloop``: the same app on uvloop's loop.

Request logs go to a file in a temporary directory, never to a terminal. With ``--pin``
(the default) each server is kept on CPU 0 and wrk on CPU 1, so they do not take turns on
one core; the machine has two.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from _servers import (
    BENCH_KEY,
    HOST,
    PYTHON,
    Server,
    free_port,
    machine_cpu_seconds,
    start_server,
    storykit_argv,
    storykit_env,
)

PATH = "/policies"
# What storykit answers on an empty database, so every target sends the same bytes.
BODY = b'{"policies":{},"version":"44136fa355b3678a"}'
DOCUMENT = json.loads(BODY)
TARGETS = ("bare", "quart", "storykit-me", "storykit", "storykit-nolog", "storykit-uvloop")
EXTRA_TARGETS = ("quart-bytes",)  # only when asked for with --targets
PATHS = {"storykit-me": "/me"}  # every other target: PATH
LABELS = {
    "bare": "bare ASGI on Hypercorn",
    "quart": "plain Quart JSON route",
    "quart-bytes": "plain Quart route, pre-encoded body",
    "storykit-me": "storykit GET /me",
    "storykit": f"storykit GET {PATH}",
    "storykit-nolog": f"storykit GET {PATH}, no req log",
    "storykit-uvloop": f"storykit GET {PATH}, --worker uvloop",
}
# Issue 14.1: storykit's authenticated, rate-limited JSON GET against the two baselines.
GOALS = {"bare": 0.5, "quart": 0.8}

# wrk's own summary as one JSON line: exact percentiles (µs) instead of its rounded text.
WRK_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50":%d,"p99":%d,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


# -- the comparison servers (run in a child process: `bench_http.py --serve bare`) -------------
async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The least an ASGI app can do: answer every request with BODY."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


def quart_app(*, pre_encoded: bool = False) -> Any:
    from quart import Quart, Response

    app = Quart("bench_http")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    if pre_encoded:

        @app.get(PATH)
        async def policies_bytes() -> Response:
            return Response(BODY, content_type="application/json")

    else:

        @app.get(PATH)
        async def policies() -> dict[str, Any]:
            return dict(DOCUMENT)  # Quart encodes it, as it does storykit's routes' dicts

    return app


def serve(kind: str, port: int) -> None:
    """Serve ``kind`` with the Hypercorn settings storykit_quart.serve uses (keep in step)."""
    import asyncio

    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{HOST}:{port}"]
    config.accesslog = None
    config.graceful_timeout = 2.0
    config.keep_alive_timeout = 75
    app = bare_app if kind == "bare" else quart_app(pre_encoded=kind == "quart-bytes")
    asyncio.run(hypercorn_serve(app, config))  # type: ignore[arg-type]


# -- measuring ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Result:
    target: str
    rps: float
    p50_ms: float
    p99_ms: float
    bad_status: int
    socket_errors: int
    server_cpu: float  # cores the server kept busy while measured
    other_cpu: float  # cores busy with anything but the server and wrk: noise


def run_wrk(
    url: str, *, seconds: float, connections: int, lua: Path, cpu: int | None
) -> dict[str, int]:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(lua),
        "-H",
        f"X-API-Key: {BENCH_KEY}",
        url,
    ]
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    done = subprocess.run(
        argv, capture_output=True, text=True, check=True, preexec_fn=pin, timeout=seconds + 30
    )
    for line in done.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return dict(json.loads(line.removeprefix("WRKJSON ")))
    raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")


def children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk, once it has been waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    target: str, server: Server, args: argparse.Namespace, lua: Path, wrk_cpu: int | None
) -> Result:
    url = server.url + PATHS.get(target, PATH)
    if args.warmup > 0:
        run_wrk(url, seconds=args.warmup, connections=args.connections, lua=lua, cpu=wrk_cpu)
    server_before, wrk_before, busy_before = (
        server.cpu_seconds(),
        children_cpu(),
        machine_cpu_seconds(),
    )
    wall_before = time.monotonic()
    stats = run_wrk(url, seconds=args.duration, connections=args.connections, lua=lua, cpu=wrk_cpu)
    wall = time.monotonic() - wall_before
    server_cpu = server.cpu_seconds() - server_before
    wrk_cpu_used = children_cpu() - wrk_before
    other = machine_cpu_seconds() - busy_before - server_cpu - wrk_cpu_used
    server.check_alive()
    return Result(
        target=target,
        rps=stats["requests"] / (stats["duration_us"] / 1e6),
        p50_ms=stats["p50"] / 1000,
        p99_ms=stats["p99"] / 1000,
        bad_status=stats["status"],
        socket_errors=stats["connect"] + stats["read"] + stats["write"] + stats["timeout"],
        server_cpu=server_cpu / wall,
        other_cpu=max(0.0, other / wall),
    )


def start(target: str, tmp: Path) -> Any:
    port = free_port()
    log = tmp / f"{target}.out"
    if target in ("bare", "quart", "quart-bytes"):
        argv = [PYTHON, str(Path(__file__).resolve()), "--serve", target, "--port", str(port)]
        # The bare app answers every path, so its health check is the measured path.
        health = PATH if target == "bare" else "/health"
        return start_server(target, argv, port=port, log=log, health_path=health)
    extra = {"LOG_LEVEL": "WARNING"} if target == "storykit-nolog" else {}
    env = storykit_env(tmp / f"{target}.jsonl", **extra)
    worker = "uvloop" if target == "storykit-uvloop" else "asyncio"
    argv = storykit_argv(port, tmp / f"{target}-data", worker=worker)
    return start_server(target, argv, port=port, log=log, env=env)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per target")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each")
    parser.add_argument("--connections", type=int, default=32, help="wrk keep-alive connections")
    parser.add_argument("--rounds", type=int, default=1, help="measure every target N times")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma separated")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--short", action="store_true", help="1 s per target, no warm-up: does it still run"
    )
    parser.add_argument("--serve", choices=("bare", "quart", "quart-bytes"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    if args.short:
        args.duration, args.warmup, args.rounds = 1.0, 0.0, 1
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(targets) - set(TARGETS) - set(EXTRA_TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    pinned = args.pin and len(os.sched_getaffinity(0)) >= 2
    server_cpus, wrk_cpu = ({0}, 1) if pinned else (None, None)

    results: dict[str, list[Result]] = {t: [] for t in targets}
    with tempfile.TemporaryDirectory(prefix="storykit-bench-http-") as tmp_name:
        tmp = Path(tmp_name)
        lua = tmp / "summary.lua"
        lua.write_text(WRK_LUA)
        for round_ in range(args.rounds):
            for target in targets:
                # A fresh server per measurement: no target inherits another's warm caches
                # or a histogram grown by earlier rounds.
                with start(target, tmp) as server:
                    if server_cpus is not None:
                        server.pin(server_cpus)
                    result = measure(target, server, args, lua, wrk_cpu)
                results[target].append(result)
                print(
                    f"  round {round_ + 1}: {LABELS[target]:34} {result.rps:>9,.0f} req/s",
                    file=sys.stderr,
                )

    placement = "server on CPU 0, wrk on CPU 1" if pinned else "not pinned"
    # "other" is CPU used by processes other than the server and wrk: a machine busy with
    # something else shows there, and makes that figure unreliable.
    print(
        f"wrk -t1 -c{args.connections}, {args.duration:g} s after {args.warmup:g} s warm-up, "
        f"median of {args.rounds} round(s); {placement}"
    )
    print(
        f"{'target':34} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'srv CPU':>7} "
        f"{'CPU us/req':>10} {'other':>6} {'non-2xx':>8} {'sock err':>8}"
    )
    rps: dict[str, float] = {}
    # The server's CPU time per request: on a machine that other work slows down, req/s
    # falls with the CPU the server gets, this much less (every target is CPU-bound).
    cpu_us: dict[str, float] = {}
    for target in targets:
        runs = results[target]
        rps[target] = median([r.rps for r in runs])
        cpu_us[target] = median([r.server_cpu / r.rps * 1e6 for r in runs])
        print(
            f"{LABELS[target]:34} {rps[target]:>9,.0f} "
            f"{median([r.p50_ms for r in runs]):>7.2f} {median([r.p99_ms for r in runs]):>7.2f} "
            f"{median([r.server_cpu for r in runs]):>7.0%} {cpu_us[target]:>10.0f} "
            f"{max(r.other_cpu for r in runs):>6.0%} "
            f"{sum(r.bad_status for r in runs):>8} {sum(r.socket_errors for r in runs):>8}"
        )
    # Ratios against the baselines measured in this same run (never against old figures).
    for base in ("bare", "quart"):
        if base not in rps:
            continue
        for target in targets:
            if target not in ("bare", base):
                print(
                    f"{LABELS[target]} / {base}: {rps[target] / rps[base]:.2f}x req/s, "
                    f"{cpu_us[base] / cpu_us[target]:.2f}x by CPU per request"
                )
    for target in ("storykit-me", "storykit"):
        for base, goal in GOALS.items():
            if target in rps and base in rps:
                ratio = rps[target] / rps[base]
                by_cpu = cpu_us[base] / cpu_us[target]
                verdict = "met" if ratio >= goal else "NOT met"
                print(
                    f"goal {target}/{base} >= {goal}x: {verdict} ({ratio:.2f}x req/s;"
                    f" {by_cpu:.2f}x by CPU per request)"
                )


if __name__ == "__main__":
    main()
