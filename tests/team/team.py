"""Replicas, a load balancer and SSE clients for the team tests (and the fan-out bench)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import coredis
import httpx

from storykit.testing import wait_until

ADMIN_URL = os.environ.get(
    "STORYKIT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("STORYKIT_TEST_REDIS", "redis://127.0.0.1:6379/0")
KEYS = "bot:agent=agentkey123,root:admin=adminkey123"
AGENT_KEY = "agentkey123"
HEADERS = {"X-API-Key": AGENT_KEY}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return 0


def sample_diff(n: int) -> str:
    name = f"m{n}.py"
    return (
        f"diff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n@@ -1 +1 @@\n-a = 1\n+a = {n}\n"
    )


@dataclass
class Replica:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """``kill -9``: no shutdown, no goodbye to its streams or the database."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_replica(
    tmp_path: Path, name: str, database_url: str, *, worker: str = "asyncio", **env: str
) -> Replica:
    repo = tmp_path / "repo"
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "-q", str(repo)], check=True)  # serve wants a repo
    port = free_port()
    log = tmp_path / f"{name}.log"
    full_env = (
        os.environ
        | {
            "DATABASE_URL": database_url,
            "API_TOKENS": KEYS,
            "REPO_PATH": str(repo),
            "STORYKIT_LOAD_PLUGINS": "",
            "LOG_FILE": str(tmp_path / f"{name}-requests.log"),
            "RATE_LIMIT_RPS": "100000",
            "RATE_LIMIT_BURST": "100000",
            "SSE_HEARTBEAT_INTERVAL": "0.5",
        }
        | env
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "storykit_cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--worker",
                worker,
                "--data-dir",
                str(tmp_path / f"data-{name}"),
            ],
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    replica = Replica(name, port, proc, log)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited: {log.read_text(errors='replace')[-3000:]}")
        return status(f"{replica.url}/health") == 200

    try:
        wait_until(healthy, what=f"{name} to answer /health", deadline=60)
    except BaseException:
        replica.kill()
        raise
    return replica


@contextlib.contextmanager
def replicas(
    tmp_path: Path, database_url: str, workers: Sequence[str], **env: str
) -> Iterator[list[Replica]]:
    """One replica per entry of ``workers`` (its event loop), each with ``env`` on top."""
    started: list[Replica] = []
    try:
        for i, worker in enumerate(workers, 1):
            started.append(start_replica(tmp_path, f"r{i}", database_url, worker=worker, **env))
        yield started
    finally:
        for replica in started:
            replica.stop()


HAPROXY_CONFIG = """\
global
    maxconn 4096

defaults
    mode http
    option httplog
    timeout connect 2s
    # SSE streams sit idle between events: client and server timeouts well above the
    # heartbeat interval, and a long tunnel timeout once the stream is established.
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    # A replica that refuses the connection (dead): try another one.
    retries 3
    option redispatch

frontend storykit
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
    # Which replica answered, so a test can tell where a client landed.
    http-response set-header X-Replica %s
{servers}
"""


@contextlib.contextmanager
def load_balancer(haproxy: str, tmp_path: Path, backends: Sequence[Replica]) -> Iterator[str]:
    """HAProxy on 127.0.0.1 in front of ``backends``, round robin; yields its URL."""
    port = free_port()
    servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port} check" for r in backends)
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers))
    check = subprocess.run([haproxy, "-c", "-q", "-f", str(config)], capture_output=True)
    assert check.returncode == 0, check.stderr.decode()
    log = tmp_path / "haproxy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [haproxy, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: status(f"{url}/health") == 200, what="HAProxy to answer")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class StreamClient:
    """An SSE reader that reconnects through ``url`` with Last-Event-ID after each
    ``reconnect_every`` events (and after any error), until :meth:`stop`. It keeps
    every id it was sent, in order, duplicates and all, and where it connected."""

    url: str
    reconnect_every: int
    ids: list[int] = field(default_factory=list)
    landed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(10, read=5)) as client:
            while not self._stop.is_set():
                try:
                    self._read(client)
                except (httpx.HTTPError, OSError) as exc:
                    self.errors.append(repr(exc))
                    time.sleep(0.05)  # then reconnect (a browser waits `retry:`)

    def _read(self, client: httpx.Client) -> None:
        last = self.ids[-1] if self.ids else 0
        headers = HEADERS | {"Last-Event-ID": str(last), "Accept": "text/event-stream"}
        with client.stream("GET", f"{self.url}/events", headers=headers) as response:
            if response.status_code != 200:
                self.errors.append(f"status {response.status_code}")
                time.sleep(0.05)
                return
            self.landed.append(response.headers.get("X-Replica", "?"))
            taken = 0
            event_id: int | None = None
            kind = "message"
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("id:"):
                    event_id = int(line[3:].strip())
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line == "":
                    if event_id is not None and kind == "message":
                        self.ids.append(event_id)
                        taken += 1
                    event_id, kind = None, "message"
                    if taken >= self.reconnect_every:
                        return


def all_ids(url: str) -> list[int]:
    """Every event id in the log, oldest first."""
    ids: list[int] = []
    while True:
        page = httpx.get(
            f"{url}/events/log",
            params={"after": ids[-1] if ids else 0, "limit": 1000},
            headers=HEADERS,
            timeout=10,
        ).json()
        ids.extend(int(item["id"]) for item in page["items"])
        if len(page["items"]) < 1000:
            return ids


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


def redis_call(url: str, method: str, *args: object) -> object:
    """One coredis call (``ping``, ``exists``, ``delete``, …) on ``url``, from sync code."""

    async def call() -> object:
        client = coredis.Redis.from_url(url)
        async with client:
            return await getattr(client, method)(*args)

    return anyio.run(call)
