"""Plans: a goal plus approved suggestions → variants side by side → select → PR."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from ui_harness import StorykitServer, one_line_diff

pytestmark = pytest.mark.browser


def approved(server: StorykitServer, title: str, diff: str) -> dict[str, Any]:
    s = server.submit(title, diff)
    return server.review(s["id"], "approve")


@pytest.fixture(scope="module")
def three(server: StorykitServer) -> list[dict[str, Any]]:
    """Three approved suggestions: two change hello.py (a conflict), one is medium risk."""
    tag = uuid.uuid4().hex[:6]
    return [
        approved(
            server, f"Plan A {tag}", one_line_diff("hello.py", "print('hello')", "print('hi')")
        ),
        approved(
            server, f"Plan B {tag}", one_line_diff("hello.py", "print('hello')", "print('hey')")
        ),
        approved(
            server, f"Plan C {tag}", one_line_diff("app.py", "import os", "import os  # TODO", 1)
        ),
    ]


def card(page: Page, key: str):
    return page.locator(f".variant[data-variant='{key}']")


def make_plan(page: Page, goal: str, titles: list[str]) -> None:
    page.get_by_role("link", name="New plan").first.click()
    page.get_by_label("Goal").fill(goal)
    checks = page.locator(".suggestion-check")
    expect(checks.filter(has_text=titles[0])).to_be_visible()
    for label in checks.all():
        box = label.locator("input")
        if any(t in label.inner_text() for t in titles):
            box.check()
        else:
            box.uncheck()
    page.get_by_role("button", name="Create plan").click()


def test_create_compare_select_and_dry_run(open_page, three) -> None:
    page = open_page("#/plans")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    titles = [s["title"] for s in three]
    make_plan(page, "Say hello more briefly", titles)
    expect(page.locator(".detail-head h2")).to_have_text("Say hello more briefly")
    expect(page).to_have_url(re.compile(r"#/plans/plan_"))

    # Variants side by side: suggestions, conflicts, risk, combined diff.
    variants = page.locator(".variant")
    expect(variants).to_have_count(3)
    boxes = [variants.nth(i).bounding_box() for i in range(3)]
    assert boxes[0]["y"] == boxes[1]["y"] == boxes[2]["y"]
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
    everything = card(page, "all")
    # The core combines the variant's diffs: A and B change the same line, so whichever
    # comes second is left out of it and listed as a conflict.
    expect(everything.locator(".variant-suggestions li")).to_have_count(2)
    expect(everything.locator(".variant-suggestions")).to_contain_text(titles[2])
    expect(everything.locator(".variant-suggestions")).to_contain_text(
        re.compile(rf"{titles[0]}|{titles[1]}")
    )
    expect(everything.locator(".conflict")).to_contain_text("hello.py")
    conflict = everything.locator(".conflict")
    expect(conflict).to_contain_text(
        re.compile(rf"“({titles[0]}|{titles[1]})” \u00d7 “({titles[0]}|{titles[1]})”")
    )
    expect(everything.locator(".variant-head .badge[data-risk]")).to_have_text("medium risk")
    low = card(page, "low-risk")
    expect(low.locator(".variant-head .badge[data-risk]")).to_have_text("low risk")
    expect(low.locator(".variant-suggestions")).not_to_contain_text(titles[2])
    expect(card(page, "first").get_by_text("No conflicts.")).to_be_visible()
    everything.locator("summary").click()
    expect(everything.locator(".diff-file")).to_have_count(2)

    low.get_by_role("button", name="Select this variant").click()
    expect(low.get_by_role("button", name="Selected")).to_have_attribute("aria-pressed", "true")
    expect(low).to_have_class(re.compile(r"\bselected\b"))
    expect(page.locator(".detail-head .badge")).to_have_text("Selected: Low-risk changes only")
    expect(page.locator(".item-list a[aria-current=true]")).to_contain_text("selected: low-risk")

    # The PR panel: dry run by default, the selected variant preselected.
    panel = page.locator(".pr-panel")
    expect(panel.get_by_label("Variant")).to_have_value("low-risk")
    dry = panel.get_by_role("checkbox", name=re.compile("Dry run"))
    expect(dry).to_be_checked()
    panel.get_by_role("button", name="Preview PR (dry run)").click()
    result = panel.locator(".pr-result")
    expect(result).to_contain_text("Dry run: nothing was changed")
    expect(result.locator(".pr-branch")).to_have_text(re.compile(r"^storykit/plan-.*-low-risk$"))
    expect(result.locator(".operations li").first).to_contain_text("git worktree add")
    expect(result.locator(".operations")).to_contain_text("(not run)")
    expect(result.locator(".diff-file")).to_have_count(1)  # A or B: the other conflicts
    expect(result.locator(".pr-url")).to_have_count(0)


def test_a_real_run_shows_the_pull_request(open_page, server, three) -> None:
    plan = server.call(
        "reviewer",
        "POST",
        "/plan",
        json={"goal": "Real run", "suggestion_ids": [three[2]["id"]]},
    )
    page = open_page(f"#/plans/{plan['id']}")
    panel = page.locator(".pr-panel")
    panel.get_by_label("Variant").select_option("first")
    panel.get_by_role("checkbox", name=re.compile("Dry run")).uncheck()
    expect(panel.locator(".notice.warn")).to_contain_text("not a dry run")
    panel.get_by_role("button", name="Create branch / PR").click()
    result = panel.locator(".pr-result")
    expect(result).to_contain_text("Created")
    link = result.locator("a.pr-url")
    expect(link).to_have_attribute(
        "href", re.compile(r"^https://forge\.example/acme/app/pull/\d+$")
    )
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(result.locator(".pr-branch")).to_have_text(re.compile(r"-first$"))
    expect(panel.locator(".pr-history li").first).to_contain_text("PR created")


def test_new_plan_form_explains_what_is_missing(open_page, server) -> None:
    page = open_page("#/plans/new")
    page.get_by_role("button", name="Create plan").click()
    expect(page.locator(".plan-form [role=alert]")).to_have_text("Say what the plan is for.")
    page.get_by_label("Goal").fill("Nothing chosen")
    for box in page.locator(".suggestion-check input").all():
        box.uncheck()
    page.get_by_role("button", name="Create plan").click()
    expect(page.locator(".plan-form [role=alert]")).to_have_text(
        "Choose at least one approved suggestion."
    )


def test_approved_list_and_plans_update_live(open_page, server) -> None:
    page = open_page("#/plans/new")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    title = f"Approved later {uuid.uuid4().hex[:6]}"
    approved(server, title, one_line_diff("build.sh", "make all", "make -j4 all", 2))
    expect(page.locator(".suggestion-check", has_text=title)).to_be_visible()
    plan = server.call("reviewer", "POST", "/plan", json={"goal": "Made by someone else"})
    expect(page.locator(".item-list a", has_text="Made by someone else")).to_be_visible()
    page.goto(page.url.split("#")[0] + f"#/plans/{plan['id']}")
    expect(page.locator(".detail-head .badge")).to_have_text("No variant selected")
    server.call("reviewer2", "POST", f"/plans/{plan['id']}/select", json={"variant": "first"})
    expect(page.locator(".detail-head .badge")).to_have_text("Selected: Smallest first step")
