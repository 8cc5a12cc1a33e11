"""The PR panel against the first-party ``dry-run`` backend on the server's real repository,
with ``PR_BACKEND`` left at ``dry-run``: a dry run whose diff no longer applies fails and
says why, a real run is not offered, and the branch can be named."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from ui_harness import StorykitServer, one_line_diff

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorykitServer]:
    srv = StorykitServer(
        tmp_path_factory.mktemp("storykit-pr"),
        plugins="uitest,dry-run",
        # The test plugin's source, planner and policy; the PR backend is the real dry run.
        env={"STORYKIT_UITEST_KINDS": "sources,planners,policies", "PR_BACKEND": "dry-run"},
    )
    srv.start()
    yield srv
    srv.stop()


def commit(server: StorykitServer, path: str, text: str) -> None:
    """Someone commits to the repository the server serves: its HEAD moves on."""
    (server.repo / path).write_text(text, encoding="utf-8")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
    ident = ["-c", "user.name=someone", "-c", "user.email=someone@example.invalid"]
    subprocess.run(
        ["git", "-C", str(server.repo), *ident, "commit", "-qam", f"edit {path}"],
        check=True,
        capture_output=True,
        env=env,
    )


def plan_with_one(
    server: StorykitServer, path: str, old: str, new: str, line: int = 1, *, context: str = ""
) -> str:
    """A plan of one approved suggestion that applies to the repository's HEAD."""
    tag = uuid.uuid4().hex[:6]
    diff = one_line_diff(path, old, new, line, context=context)
    s = server.submit(f"Change {path} {tag}", diff)
    server.review(s["id"], "approve")
    plan = server.call(
        "reviewer", "POST", "/plan", json={"goal": f"Goal {tag}", "suggestion_ids": [s["id"]]}
    )
    return str(plan["id"])


def dry_run(page: Page) -> None:
    page.locator(".pr-panel").get_by_role("button", name="Preview PR (dry run)").click()


def test_a_dry_run_whose_diff_no_longer_applies_shows_an_error(open_page, server) -> None:
    plan_id = plan_with_one(server, "build.sh", "make all", "make -j4 all", 2)
    page = open_page(f"#/plans/{plan_id}")
    panel = page.locator(".pr-panel")
    dry_run(page)
    expect(panel.locator(".pr-result")).to_contain_text("Dry run: nothing was changed")
    expect(panel.locator(".operations")).to_contain_text("# check: the diff applies cleanly")
    toast = page.locator("#toasts .toast", has_text="Dry run finished")
    expect(toast).to_have_count(1)
    toast.get_by_role("button", name="Dismiss").click()

    commit(server, "build.sh", "#!/bin/sh\nmake everything\n")  # the approved line is gone
    dry_run(page)
    error = panel.locator(".form-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("the diff of variant 'all' does not apply to HEAD")
    expect(error).to_contain_text("patch failed: build.sh:2")
    expect(error).to_contain_text("ask its proposer for a revision made against HEAD")
    expect(panel.locator(".pr-result")).to_have_count(0)  # the earlier result is gone
    expect(page.locator("#toasts .toast")).to_have_count(0)  # no "Dry run finished"


def test_no_real_run_is_offered_when_pr_backend_is_dry_run(open_page, server) -> None:
    plan_id = plan_with_one(
        server, "app.py", "import os", "import os  # used below", context="import sys"
    )
    page = open_page(f"#/plans/{plan_id}")
    panel = page.locator(".pr-panel")
    dry = panel.get_by_role("checkbox", name=re.compile("Dry run"))
    expect(dry).to_be_checked()
    expect(dry).to_be_disabled()
    expect(panel.locator(".preview-only")).to_contain_text("PR_BACKEND is dry-run")
    expect(panel.locator(".preview-only")).to_contain_text("set PR_BACKEND=git")
    expect(panel.locator(".notice.warn")).to_be_hidden()
    expect(panel.get_by_role("button", name="Create branch / PR")).to_have_count(0)
    dry_run(page)
    expect(panel.locator(".pr-result")).to_contain_text("Dry run: nothing was changed")


def test_the_branch_can_be_named(open_page, server) -> None:
    plan_id = plan_with_one(server, "hello.py", "x = 1", "x = 2", 2)
    page = open_page(f"#/plans/{plan_id}")
    panel = page.locator(".pr-panel")
    branch = panel.get_by_label("Branch (optional)")
    branch.fill("bad..name")
    dry_run(page)
    expect(panel.locator(".form-error")).to_contain_text("not a valid git branch name")
    branch.fill("fix/hello-x")
    dry_run(page)
    expect(panel.locator(".pr-result .pr-branch")).to_have_text("fix/hello-x")
    expect(panel.locator(".form-error")).to_be_hidden()


def test_a_multi_line_commit_message_keeps_its_lines(open_page, server) -> None:
    plan_id = plan_with_one(server, "hello.py", "x = 1", "x = 3", 2)
    page = open_page(f"#/plans/{plan_id}")
    panel = page.locator(".pr-panel")
    dry_run(page)
    commit_step = panel.locator(".operations li code", has_text=re.compile(r"^git .*commit"))
    expect(commit_step.first).to_be_visible()
    text = commit_step.first.inner_text()
    assert "Storykit-Suggestion" in text or "\n" in text, text
    # Rendered on several lines, as the message is: taller than one line of its font.
    box = commit_step.first.bounding_box()
    line_height = page.evaluate(
        "(el) => parseFloat(getComputedStyle(el).lineHeight) || 16",
        commit_step.first.element_handle(),
    )
    assert box is not None and box["height"] > 2 * line_height, (box, line_height, text)
