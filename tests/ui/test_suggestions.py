"""The key gate, the suggestion list and detail, reviewing, generating, refining."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect
from ui_harness import KEYS, one_line_diff

pytestmark = pytest.mark.browser
MINUS = "\u2212"  # the dashboard's sign for removed lines


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:6]}"


def row(page: Page, title: str):
    return page.locator(".item-list a.item", has_text=title)


def open_suggestion(page: Page, title: str) -> None:
    row(page, title).click()
    expect(page.locator("#detail-title")).to_have_text(title)


# -- connecting -------------------------------------------------------------------------
def test_first_visit_asks_for_the_key_once(open_page, server) -> None:
    page = open_page(key=None)
    key = page.get_by_label("API key")
    expect(key).to_be_focused()
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    key.fill("not-a-key-at-all")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_role("alert").filter(has_text="did not accept")).to_be_visible()
    expect(page.locator(".gate-form [role=alert]")).to_contain_text(
        "Each data directory has its own"
    )
    # The rejected key stays in the field, selected, so a typo can be fixed or pasted over.
    expect(page.get_by_label("API key")).to_have_value("not-a-key-at-all")
    expect(page.get_by_label("API key")).to_be_focused()
    selected = page.evaluate(
        "(() => { const i = document.querySelector('input[name=key]');"
        " return i.value.slice(i.selectionStart, i.selectionEnd); })()"
    )
    assert selected == "not-a-key-at-all"
    page.get_by_label("API key").fill(KEYS["reviewer"])
    page.get_by_role("button", name="Connect").click()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#conn-text")).to_have_text("Live")
    assert page.evaluate("localStorage.getItem('storykit.key')") == KEYS["reviewer"]
    page.reload()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.get_by_label("API key")).to_have_count(0)
    page.get_by_role("button", name="Change key").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("localStorage.getItem('storykit.key')") is None


def test_connection_state_is_a_live_region(open_page) -> None:
    page = open_page()
    status = page.locator("#conn-text")
    expect(status).to_have_attribute("role", "status")
    expect(status).to_have_attribute("aria-live", "polite")
    expect(status).to_have_text("Live")


# -- the list ------------------------------------------------------------------------------
def test_list_filters_by_status_risk_source_and_agent(open_page, server) -> None:
    calm = unique("Calm change")
    todo = unique("Leaves a TODO")
    wild = unique("Deletes everything")
    server.submit(calm, one_line_diff("hello.py", "x = 1", "x = 2", 2))
    server.submit(todo, one_line_diff("hello.py", "x = 1", "x = 1  # TODO later", 2))
    server.submit(wild, one_line_diff("build.sh", "make all", "rm -rf / && make all", 2))
    page = open_page()
    for title in (calm, todo, wild):
        expect(row(page, title)).to_be_visible()
    expect(row(page, wild).locator(".badge[data-status]")).to_have_text("Blocked")
    expect(row(page, todo).locator(".badge[data-risk]")).to_have_text("medium risk")

    page.get_by_label("Status").select_option("blocked")
    expect(row(page, wild)).to_be_visible()
    expect(row(page, calm)).to_have_count(0)
    page.get_by_label("Status").select_option("")
    page.get_by_label("Risk").select_option("medium")
    expect(row(page, todo)).to_be_visible()
    expect(row(page, calm)).to_have_count(0)
    expect(row(page, wild)).to_have_count(0)
    page.get_by_label("Risk").select_option("")
    page.get_by_label("Source").select_option("uitest-src")
    expect(page.locator(".item-list .empty")).to_contain_text("No suggestions match")
    page.get_by_label("Source").select_option("api")
    expect(row(page, calm)).to_be_visible()
    page.get_by_label("Agent").fill("somebody-else")
    expect(row(page, calm)).to_have_count(0)
    page.get_by_label("Agent").fill("bot")
    expect(row(page, calm)).to_be_visible()


def test_list_updates_live(open_page, server) -> None:
    page = open_page()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    title = unique("Arrives while watching")
    server.submit(title, one_line_diff("hello.py", "x = 1", "x = 3", 2))
    expect(row(page, title)).to_be_visible()
    expect(row(page, title).locator(".badge[data-status]")).to_have_text("Pending")


# -- the detail -------------------------------------------------------------------------------
DIFF = (
    "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n"
    "@@ -1,6 +1,6 @@\n-import os\n+import os  # TODO drop\n import sys\n \n \n def main():\n"
    "-    return  sys.argv\n+    return sys.argv\n"
    "diff --git a/notes.txt b/notes.txt\nnew file mode 100644\n--- /dev/null\n+++ b/notes.txt\n"
    "@@ -0,0 +1,2 @@\n+first\n+second\n"
)


def test_detail_renders_the_diff_with_findings_on_their_lines(open_page, server) -> None:
    title = unique("Two files")
    s = server.submit(title, DIFF, "Because the linter says so.\nAnd a second line.")
    page = open_page(f"#/suggestions/{s['id']}")
    expect(page.locator("#detail-title")).to_have_text(title)
    expect(page.locator(".detail-body .prose").first).to_have_text(
        "Because the linter says so.\nAnd a second line."
    )
    files = page.locator(".diff-file")
    expect(files).to_have_count(2)
    expect(files.nth(0).locator(".diff-path")).to_have_text("app.py")
    expect(files.nth(0).locator(".diff-file-head .diff-stat")).to_have_text(f"+2 {MINUS}2")
    expect(files.nth(1).locator(".tag")).to_have_text("new file")
    app = files.nth(0)
    deleted = app.locator("tr.line.del").first
    expect(deleted.locator("td.ln").nth(0)).to_have_text("1")
    expect(deleted.locator("td.ln").nth(1)).to_have_text("")
    expect(deleted.locator("td.code")).to_have_text(f"{MINUS}import os")
    added = app.locator("tr.line.add").first
    expect(added.locator("td.ln").nth(1)).to_have_text("1")
    # The policy's TODO finding sits right under new line 1 of app.py.
    expect(added).to_have_class(re.compile(r"\bhas-finding\b"))
    finding_row = added.locator("xpath=following-sibling::tr[1]")
    expect(finding_row).to_have_class("finding-row")
    expect(finding_row).to_contain_text("leaves a TODO behind")
    expect(page.locator(".finding-list li")).to_have_count(1)
    expect(page.locator(".finding-list .finding-where")).to_have_text("app.py:1")

    page.get_by_role("button", name="Side by side").click()
    split = files.nth(0).locator("table.diff-table.split")
    expect(split).to_be_visible()
    pair = split.locator("tr.line.pair").first
    expect(pair.locator("td.code.del")).to_have_text(f"{MINUS}import os")
    expect(pair.locator("td.code.add")).to_have_text("+import os  # TODO drop")
    expect(split.locator("tr.finding-row")).to_have_count(1)
    # The choice sticks, and "u" flips it back.
    page.keyboard.press("u")
    expect(files.nth(0).locator("table.diff-table.unified")).to_be_visible()

    files.nth(1).locator(".diff-file-toggle").click()
    expect(files.nth(1).locator(".diff-body")).to_be_hidden()
    expect(files.nth(1).locator(".diff-file-toggle")).to_have_attribute("aria-expanded", "false")


def test_review_with_the_keyboard(open_page, server) -> None:
    first = unique("Keyboard one")
    second = unique("Keyboard two")
    server.submit(first, one_line_diff("hello.py", "x = 1", "x = 4", 2))
    server.submit(second, one_line_diff("hello.py", "x = 1", "x = 5", 2))
    page = open_page()
    expect(row(page, second)).to_be_visible()
    page.locator("body").click()
    page.keyboard.press("j")  # newest first: the second one
    expect(page.locator("#detail-title")).to_have_text(second)
    expect(row(page, second)).to_have_attribute("aria-current", "true")
    expect(row(page, second)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#detail-title")).to_have_text(first)
    page.keyboard.press("k")
    expect(page.locator("#detail-title")).to_have_text(second)

    page.keyboard.press("?")
    help_ = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_).to_be_visible()
    page.keyboard.press("Escape")
    expect(help_).to_be_hidden()
    page.keyboard.press("?")
    help_.get_by_role("button", name="Close").click()
    expect(help_).to_be_hidden()

    # Shortcuts are text while typing: "a" in the comment approves nothing.
    page.keyboard.press("r")
    comment = page.get_by_label("Review comment")
    expect(comment).to_be_focused()
    page.get_by_role("button", name="Ask for revision").click()
    expect(page.get_by_role("alert").filter(has_text="needs a comment")).to_be_visible()
    comment.type("a clearer name, please")
    expect(page.locator(".detail-head .badge[data-status]")).to_have_text("Pending")
    comment.press("Control+Enter")
    expect(page.locator(".detail-head .badge[data-status]")).to_have_text("Revision requested")
    expect(page.locator(".history li").first).to_contain_text("a clearer name, please")
    expect(page.locator(".history li").first).to_contain_text("rita")

    page.keyboard.press("Escape")
    page.keyboard.press("j")
    expect(page.locator("#detail-title")).to_have_text(first)
    page.keyboard.press("a")
    expect(page.locator(".detail-head .badge[data-status]")).to_have_text("Approved")
    expect(row(page, first).locator(".badge[data-status]")).to_have_text("Approved")

    page.keyboard.press("k")
    expect(page.locator("#detail-title")).to_have_text(second)
    page.keyboard.press("x")
    confirm = page.get_by_role("dialog", name="Reject this suggestion?")
    expect(confirm).to_be_visible()
    expect(confirm.get_by_role("button", name="Reject")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".detail-head .badge[data-status]")).to_have_text("Rejected")
    expect(page.get_by_role("button", name="Approve")).to_be_disabled()


def test_blocked_suggestion_cannot_be_approved(open_page, server) -> None:
    title = unique("Blocked one")
    s = server.submit(title, one_line_diff("build.sh", "make all", "rm -rf /", 2))
    page = open_page(f"#/suggestions/{s['id']}")
    expect(page.locator(".detail-head .badge[data-status]")).to_have_text("Blocked")
    expect(page.get_by_role("button", name="Approve")).to_be_disabled()
    expect(page.locator(".review-box .notice")).to_contain_text("Blocked by policy")
    expect(page.locator(".finding-list")).to_contain_text("deletes files recursively")


def test_agent_key_sees_why_it_cannot_review(open_page, server) -> None:
    title = unique("Agent looks")
    s = server.submit(title, one_line_diff("hello.py", "x = 1", "x = 6", 2))
    page = open_page(f"#/suggestions/{s['id']}", key="agent")
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".review-box > [role=alert]")).to_contain_text("reviewer role")
    expect(page.locator(".detail-head .badge[data-status]")).to_have_text("Pending")


def test_your_own_proposal_says_why_and_what_to_do(open_page, server) -> None:
    title = unique("My own")
    s = server.call(
        "admin",
        "POST",
        "/suggestions",
        json={"title": title, "diff": one_line_diff("hello.py", "x = 1", "x = 8", 2)},
    )
    page = open_page(f"#/suggestions/{s['id']}", key="admin")
    expect(page.locator(".detail-head")).to_be_visible()
    expect(page.get_by_text("root (through the API)")).to_be_visible()
    page.get_by_role("button", name="Approve").click()
    alert = page.locator(".review-box > [role=alert]")
    expect(alert).to_contain_text("nobody approves their own proposal")
    expect(alert).to_contain_text("another person's key")
    expect(alert).not_to_contain_text("role may not allow")
    expect(page.locator(".detail-head .badge[data-status]")).to_have_text("Pending")


def test_a_review_elsewhere_shows_in_every_open_page(open_page, server) -> None:
    title = unique("Seen twice")
    s = server.submit(title, one_line_diff("hello.py", "x = 1", "x = 7", 2))
    one = open_page(f"#/suggestions/{s['id']}", key="reviewer")
    two = open_page(f"#/suggestions/{s['id']}", key="reviewer2")
    for page in (one, two):
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        expect(page.locator("#detail-title")).to_have_text(title)
    # The second reviewer is half-way through a comment when the update arrives.
    two.get_by_label("Review comment").type("I was about to")
    one.get_by_label("Review comment").fill("ship it")
    one.get_by_role("button", name="Approve").click()
    expect(one.locator(".detail-head .badge[data-status]")).to_have_text("Approved")
    expect(two.locator(".detail-head .badge[data-status]")).to_have_text("Approved")
    expect(two.get_by_label("Review comment")).to_be_focused()
    expect(two.get_by_label("Review comment")).to_have_value("I was about to")
    expect(row(two, title).locator(".badge[data-status]")).to_have_text("Approved")
    expect(two.locator(".history li").first).to_contain_text("rita")
    expect(two.locator(".history li").first).to_contain_text("ship it")


# -- generating and refining ------------------------------------------------------------------
def test_generate_shows_progress_and_the_new_suggestions(open_page) -> None:
    page = open_page()
    page.get_by_role("button", name="Generate…").click()
    dialog = page.get_by_role("dialog", name="Generate suggestions")
    expect(dialog).to_be_visible()
    source = dialog.get_by_label("uitest-src")
    expect(source).to_be_checked()
    dialog.get_by_label("Paths").fill("hello.py")
    dialog.get_by_role("button", name="Run").click()
    row_ = dialog.locator(".progress-row[data-source='uitest-src']")
    expect(row_).to_contain_text("scanning")
    expect(row_.locator("progress")).to_have_attribute("max", "3")
    expect(dialog.locator(".result")).to_contain_text("1 suggestion created")
    expect(row_).to_contain_text("3 / 3")
    created = dialog.locator(".result a")
    expect(created).to_contain_text("Generated: tidy hello.py")
    title = created.inner_text()
    created.click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#detail-title")).to_have_text(title)
    expect(row(page, title)).to_be_visible()


def test_generate_needs_a_source(open_page) -> None:
    page = open_page()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.keyboard.press("g")
    dialog = page.get_by_role("dialog", name="Generate suggestions")
    dialog.get_by_label("uitest-src").uncheck()
    dialog.get_by_role("button", name="Run").click()
    expect(dialog.get_by_role("alert")).to_have_text("Choose at least one source.")


def test_refine_without_a_refiner_says_how_to_configure_one(open_page, server) -> None:
    title = unique("Refine me")
    s = server.submit(title, one_line_diff("hello.py", "x = 1", "x = 8", 2))
    page = open_page(f"#/suggestions/{s['id']}")
    page.get_by_text("Refine with the LLM").click()
    page.get_by_label("Instructions for the refiner").fill("shorter")
    page.get_by_role("button", name="Refine", exact=True).click()
    error = page.locator(".refine [role=alert]")
    expect(error).to_contain_text("No LLM refiner is configured")
    expect(error).to_contain_text("STORYKIT_LLM_BASE_URL")
