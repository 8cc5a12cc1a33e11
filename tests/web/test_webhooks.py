"""``POST /webhooks/github`` and ``/webhooks/gitlab`` on a real ``storykit serve`` process,
with the first-party ``github`` and ``gitlab`` backends: deliveries shaped as each forge
documents them (tests/plugins/recorded/<forge>/webhooks/), signed for real."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import pytest
from realserver import REVIEWER_KEY, Server, free_port, serve_command, start_server

from storykit.models import Plan, PullRequest, Variant
from storykit.store.sqlite import SqliteStore
from storykit.webhooks import sign_github

GITHUB_SECRET = "github-hook-secret-0123456789abcdef"
GITLAB_SECRET = "gitlab-hook-token-0123456789abcdef"
RECORDED = Path(__file__).resolve().parents[1] / "plugins" / "recorded"
HEAD = "7638417db6d59f3c431d3e1f261cc637155684cd"
GITLAB_HEAD = "2f8c1e0d9b7a6c5e4d3f2a1b0c9d8e7f6a5b4c3d"
PLAN_ID = "plan_01HF3Z8Q5N2D6K9V0W4X7Y1Z3A"


def recorded(forge: str, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    found = json.loads((RECORDED / forge / "webhooks" / f"{name}.json").read_text())
    return dict(found["headers"]), found["body"]


def seed(data_dir: Path) -> None:
    """What storykit holds after it opened GitHub PR octo/hello#42 and GitLab MR !7 of
    project 4 from one plan (the opening itself is tests/core/test_pr_tracking.py's)."""

    def pr(backend: str, repository: str, number: int, head: str, url: str) -> PullRequest:
        return PullRequest(
            backend=backend,
            repository=repository,
            number=number,
            url=url,
            branch="storykit/plan-7-all",
            variant="all",
            head=head,
            opened_by="me",
        )

    plan = Plan(
        id=PLAN_ID,
        goal="Tidy the code",
        variants=(Variant(key="all", title="All", suggestion_ids=()),),
        created_by="me",
        pull_requests=(
            pr("github", "octo/hello", 42, HEAD, "https://github.com/octo/hello/pull/42"),
            pr("gitlab", "4", 7, GITLAB_HEAD, "https://gitlab.com/octo/hello/-/merge_requests/7"),
        ),
    )

    async def write() -> None:
        async with SqliteStore(data_dir / "storykit.db") as store:
            await store.write("pr.created", {"plan_id": plan.id}, plans=[plan])

    anyio.run(write)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    seed(tmp_path / "data")
    env = {
        "STORYKIT_LOAD_PLUGINS": "github,gitlab",
        "STORYKIT_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "STORYKIT_GITLAB_WEBHOOK_SECRET_FILE": str(secret_file(tmp_path)),
        "STORYKIT_PR_POLL_INTERVAL": "0",
    }
    srv = start_server(tmp_path, env=env)
    yield srv
    srv.stop()


def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "gitlab-secret"
    path.write_text(GITLAB_SECRET + "\n", encoding="utf-8")
    return path


def github(
    server: Server,
    name: str,
    *,
    edit: Any = None,
    secret: str = GITHUB_SECRET,
    form: bool = False,
    delivery: str | None = None,
) -> httpx.Response:
    """Send a recorded GitHub delivery, signed with ``secret`` as GitHub signs it."""
    headers, payload = recorded("github", name)
    if edit is not None:
        edit(payload)
    text = json.dumps(payload)
    if form:  # the hook's other content type: the JSON in a form field
        body = urlencode({"payload": text}).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    else:
        body = text.encode()
    headers["X-Hub-Signature-256"] = sign_github(secret, body)
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    return httpx.post(f"{server.url}/webhooks/github", content=body, headers=headers)


def gitlab(
    server: Server, name: str, *, token: str = GITLAB_SECRET, key: str | None = None
) -> httpx.Response:
    headers, payload = recorded("gitlab", name)
    headers["X-Gitlab-Token"] = token
    if key is not None:
        headers["Idempotency-Key"] = key
    return httpx.post(f"{server.url}/webhooks/gitlab", json=payload, headers=headers)


def pull_requests(server: Server) -> dict[str, dict[str, Any]]:
    plan = httpx.get(f"{server.url}/plans/{PLAN_ID}", headers={"X-API-Key": REVIEWER_KEY}).json()
    return {p["backend"]: p for p in plan["pull_requests"]}


def pr_events(server: Server) -> list[dict[str, Any]]:
    log = httpx.get(f"{server.url}/events/log", headers={"X-API-Key": REVIEWER_KEY}).json()
    return [e["data"] for e in log["items"] if e["type"] == "pr.updated"]


def test_github_deliveries_follow_the_pull_request(server: Server) -> None:
    failing = github(server, "check_suite_completed_failure")
    assert failing.status_code == 200, failing.text
    assert failing.json()["result"] == "updated"
    [update] = failing.json()["updates"]
    assert (update["plan_id"], update["number"], update["checks"]) == (PLAN_ID, 42, "failing")
    passing = github(server, "check_run_completed_success")
    assert passing.json()["result"] == "updated"
    pr = pull_requests(server)["github"]
    assert (pr["state"], pr["checks"]) == ("open", "failing")  # the suite still fails
    assert pr["check_runs"] == {"suite:github-actions": "failing", "test (3.12)": "passing"}

    merged = github(server, "pull_request_closed_merged")
    assert (merged.status_code, merged.json()["result"]) == (200, "updated")
    pr = pull_requests(server)["github"]
    assert (pr["state"], pr["merged_at"]) == ("merged", "2023-11-15T09:00:00+00:00")

    # GitHub's "Redeliver" sends the same X-GitHub-Delivery: nothing happens again.
    again = github(server, "pull_request_closed_merged")
    assert (again.status_code, again.json()["result"]) == (200, "replayed")
    # A closed event after the merge (another delivery) cannot unmerge it.
    closed = github(server, "pull_request_closed", form=True)
    assert closed.json()["result"] == "unchanged"
    assert [(e["state"], e["checks"], e["was"]["state"]) for e in pr_events(server)] == [
        ("open", "failing", "open"),
        ("open", "failing", "open"),
        ("merged", "failing", "open"),
    ]


def test_a_bad_signature_is_401_and_changes_nothing(server: Server) -> None:
    forged = github(server, "pull_request_closed_merged", secret="someone-elses-secret-0000")
    assert forged.status_code == 401
    assert forged.headers["content-type"] == "application/problem+json"
    assert "X-Hub-Signature-256" in forged.json()["detail"]
    assert "www-authenticate" not in forged.headers  # not about an API key
    headers, payload = recorded("github", "pull_request_closed_merged")
    unsigned = httpx.post(f"{server.url}/webhooks/github", json=payload, headers=headers)
    assert unsigned.status_code == 401
    assert pull_requests(server)["github"]["state"] == "open"
    # The forged delivery was not recorded: the genuine one with its id still counts.
    assert github(server, "pull_request_closed_merged").json()["result"] == "updated"


def test_a_delivery_about_another_pull_request_is_202_ignored(server: Server) -> None:
    def other(payload: dict[str, Any]) -> None:
        payload["pull_request"]["number"] = 43

    ignored = github(server, "pull_request_closed_merged", edit=other)
    assert (ignored.status_code, ignored.json()["result"]) == (202, "ignored")
    ping = github(server, "ping")
    assert (ping.status_code, ping.json()["event"]) == (202, "ping")
    assert pr_events(server) == []


def test_gitlab_deliveries_follow_the_merge_request(server: Server) -> None:
    wrong = gitlab(server, "merge_request_merged", token="not-the-token-at-all-0000")
    assert (wrong.status_code, wrong.headers["content-type"]) == (401, "application/problem+json")
    failed = gitlab(server, "pipeline_failed")
    assert (failed.status_code, failed.json()["result"]) == (200, "updated")
    merged = gitlab(server, "merge_request_merged")
    assert merged.json()["result"] == "updated"
    pr = pull_requests(server)["gitlab"]
    assert (pr["state"], pr["checks"], pr["head"]) == ("merged", "failing", GITLAB_HEAD)
    # A retry keeps its Idempotency-Key; without one, X-Gitlab-Event-UUID names it.
    assert gitlab(server, "merge_request_merged").json()["result"] == "replayed"
    assert gitlab(server, "pipeline_failed", key="").json()["result"] == "unchanged"
    assert [e["backend"] for e in pr_events(server)] == ["gitlab", "gitlab"]


def test_an_unreadable_webhook_secret_stops_start_up(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    missing = tmp_path / "no-such-secret"
    proc = serve_command(
        tmp_path,
        tmp_path / "d",
        free_port(),
        log=tmp_path / "log",
        env={
            "API_TOKENS": "me:reviewer=reviewkey12",
            "STORYKIT_GITHUB_WEBHOOK_SECRET_FILE": str(missing),
        },
    )
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the server started") from None
    assert proc.returncode != 0
    assert "STORYKIT_GITHUB_WEBHOOK_SECRET_FILE" in err
    assert "cannot read the secret" in err
