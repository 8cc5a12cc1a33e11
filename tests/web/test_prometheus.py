"""``/metrics`` against the real tools (SPEC §7): promtool's checker and a Prometheus scrape.

Both run against a real ``storykit serve`` process that has served some traffic first,
so the request counters and histograms have series to show. promtool and prometheus come
from Debian's ``prometheus`` package (scripts/system-deps.sh installs it); without them
these tests skip and say so.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from realserver import ADMIN_KEY, AGENT_KEY, Server, free_port, running_server, sample_diff

from storykit.testing import tool_missing

T = TypeVar("T")

MISSING = "{} is not installed (Debian package: prometheus; scripts/system-deps.sh installs it)"
DEADLINE = 60.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("metrics-server")) as running:
        _traffic(running)
        yield running


def _traffic(server: Server) -> None:
    """A little of everything the counters break down: routes, methods, statuses."""
    agent, admin = {"X-API-Key": AGENT_KEY}, {"X-API-Key": ADMIN_KEY}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/policies", headers=admin).status_code == 200
        assert client.get("/suggestions", params={"limit": 1}, headers=agent).status_code == 200
        assert client.get("/policies").status_code == 401
        assert client.get("/no-such-route", headers=agent).status_code == 404
        submitted = client.post(
            "/suggestions",
            json={"title": "metrics traffic", "diff": sample_diff(1), "rationale": "test"},
            headers=agent,
        )
        assert submitted.status_code == 201, submitted.text
        checked = client.post("/policies/check", json={"diff": sample_diff(2)}, headers=agent)
        assert checked.status_code == 200, checked.text


def _poll(
    probe: Callable[[], T | None], what: str, process: subprocess.Popen[bytes], log: Path
) -> T:
    """Call ``probe`` until it returns something, failing early if ``process`` dies."""
    deadline = time.monotonic() + DEADLINE
    while True:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{_tail(log)}")
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {DEADLINE:g}s; prometheus said:\n{_tail(log)}")
        time.sleep(0.2)  # the polling interval, not a wait for anything in particular


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _api(url: str, **params: str) -> Any:
    """The ``data`` of a Prometheus API answer, or None while it cannot give one yet."""
    try:
        response = httpx.get(url, params=params, timeout=5)
    except httpx.TransportError:
        return None  # not listening yet
    if response.status_code != 200:
        return None
    body = response.json()
    return body["data"] if body.get("status") == "success" else None


def test_promtool_finds_no_problem_in_metrics(server: Server) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        tool_missing(MISSING.format("promtool"))
    response = httpx.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b'storykit_http_requests_total{method="GET",route="/policies"' in response.content

    checked = subprocess.run(
        [promtool, "check", "metrics"], input=response.content, capture_output=True, timeout=60
    )

    problems = (checked.stdout + checked.stderr).decode(errors="replace").strip()
    assert checked.returncode == 0, problems
    assert problems == ""


@pytest.mark.slow
def test_a_real_prometheus_scrapes_the_server(server: Server, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        tool_missing(MISSING.format("prometheus"))
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: storykit\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{server.port}']\n"
    )
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        prometheus = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:

        def healthy_target() -> dict[str, Any] | None:
            data = _api(f"{api}/targets", state="active")
            targets = data["activeTargets"] if data else []
            return next((t for t in targets if t["health"] == "up"), None)

        target = _poll(healthy_target, "target with health 'up'", prometheus, log)
        assert target["scrapeUrl"] == f"http://127.0.0.1:{server.port}/metrics"
        assert target["lastError"] == ""

        def series() -> list[dict[str, Any]] | None:
            data = _api(f"{api}/query", query="storykit_http_requests_total")
            return data["result"] or None if data else None

        result = _poll(series, "storykit_http_requests_total series", prometheus, log)
        by_route = {(r["metric"]["route"], r["metric"]["status"]): r for r in result}
        assert float(by_route["/policies", "200"]["value"][1]) >= 1
        assert ("/suggestions", "201") in by_route
        assert all(r["metric"]["job"] == "storykit" for r in result)
    finally:
        prometheus.terminate()
        try:
            prometheus.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prometheus.kill()
            prometheus.wait()
