"""A pull request opened from the dashboard, then followed: signed GitHub webhook deliveries
(shaped as GitHub documents them) change what the plan shows, live, in real Chromium."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from ui_harness import StorykitServer, one_line_diff

from storykit.webhooks import sign_github

pytestmark = pytest.mark.browser

SECRET = "ui-github-webhook-secret-0123456789"
HOOKS = Path(__file__).resolve().parents[1] / "plugins" / "recorded" / "github" / "webhooks"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorykitServer]:
    srv = StorykitServer(
        tmp_path_factory.mktemp("storykit-prstate"), env={"STORYKIT_GITHUB_WEBHOOK_SECRET": SECRET}
    )
    srv.start()
    yield srv
    srv.stop()


def deliver(
    server: StorykitServer, name: str, number: int, edit: Callable[[Any], None] | None = None
) -> Any:
    """GitHub's delivery ``name`` about acme/app#``number`` (whose head is the commit the test
    plugin's forge made), signed with the secret."""
    recorded = json.loads((HOOKS / f"{name}.json").read_text())
    headers, payload = recorded["headers"], recorded["body"]
    head = f"{number:07x}0c0ffee"
    payload["repository"]["full_name"] = "acme/app"
    if "pull_request" in payload:
        payload["pull_request"] |= {"number": number}
        payload["pull_request"]["head"]["sha"] = head
    for item in (payload.get("check_run"), payload.get("check_suite")):
        if item is not None:
            item["head_sha"] = head
            for pull in item.get("pull_requests", []):
                pull["number"] = number
    if edit is not None:
        edit(payload)
    body = json.dumps(payload).encode()
    headers |= {
        "X-Hub-Signature-256": sign_github(SECRET, body),
        "X-GitHub-Delivery": uuid.uuid4().hex,
    }
    response = httpx.post(f"{server.url}/webhooks/github", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def open_a_pr(page: Page) -> int:
    """Open the plan's PR from the PR panel, as a person does; its number."""
    panel = page.locator(".pr-panel")
    panel.get_by_role("checkbox", name=re.compile("Dry run")).uncheck()
    panel.get_by_role("button", name="Create branch / PR").click()
    link = panel.locator(".pr-result a.pr-url")
    expect(link).to_have_attribute("href", re.compile(r"/pull/\d+$"))
    return int(str(link.get_attribute("href")).rsplit("/", 1)[1])


def test_the_plan_shows_its_pull_request_merge_and_checks_live(open_page, server) -> None:
    tag = uuid.uuid4().hex[:6]
    s = server.submit(f"Follow {tag}", one_line_diff("hello.py", "print('hello')", "print('hi')"))
    server.review(s["id"], "approve")
    plan = server.call(
        "reviewer", "POST", "/plan", json={"goal": f"Ship {tag}", "suggestion_ids": [s["id"]]}
    )
    page = open_page(f"#/plans/{plan['id']}")
    number = open_a_pr(page)

    state = page.locator(f".pr-state[data-number='{number}']")
    expect(state).to_contain_text(f"acme/app #{number}")
    expect(state.locator(".badge.pr-open")).to_have_text("Open")
    expect(state.locator(".badge.checks-none")).to_have_text("No checks")
    expect(state.locator("a.pr-link")).to_have_attribute(
        "href", f"https://forge.example/acme/app/pull/{number}"
    )

    def running(payload: Any) -> None:
        payload["check_run"] |= {"status": "in_progress", "conclusion": None}

    deliver(server, "check_run_completed_success", number, running)
    expect(state.locator(".badge.checks-pending")).to_have_text("Checks pending")
    expect(state.locator(".check-run")).to_have_text("test (3.12): pending")

    deliver(server, "check_run_completed_success", number)
    expect(state.locator(".badge.checks-passing")).to_have_text("Checks passing")
    deliver(server, "pull_request_closed_merged", number)
    expect(state.locator(".badge.pr-merged")).to_have_text("Merged")
    # The list of plans says so too, and the panel's history lists the run, not the updates.
    item = page.locator(f".item[data-id='{plan['id']}']")
    expect(item.locator(".badge.pr-merged")).to_have_text("PR merged")
    expect(page.locator(".pr-history li")).to_have_count(1)

    # A reload reads the same from the server.
    page.reload()
    expect(page.locator(f".pr-state[data-number='{number}'] .badge.pr-merged")).to_be_visible()
    expect(page.locator(f".pr-state[data-number='{number}']")).to_have_attribute(
        "data-checks", "passing"
    )
