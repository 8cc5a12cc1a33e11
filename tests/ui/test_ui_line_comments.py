"""Line comments in the diff, as a reviewer writes and reads them (unified and side by side)."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect
from ui_harness import StorykitServer

pytestmark = pytest.mark.browser


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:6]}"


def app_diff(first: str, last: str) -> str:
    """app.py with its first and last lines changed (one hunk over the whole file)."""
    return (
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n"
        f"@@ -1,6 +1,6 @@\n-import os\n+{first}\n import sys\n \n \n def main():\n"
        f"-    return  sys.argv\n+{last}\n"
    )


def open_suggestion(page: Page, title: str) -> None:
    page.locator(".item-list a.item", has_text=title).click()
    expect(page.locator("#detail-title")).to_have_text(title)


def comment_on(page: Page, label: str, text: str, *, keyboard: bool = False) -> None:
    button = page.get_by_role("button", name=label, exact=True)
    if keyboard:
        button.focus()
        page.keyboard.press("Enter")
    else:
        button.click()
    box = page.locator(".comment-form textarea")
    expect(box).to_be_focused()
    box.fill(text)
    page.get_by_role("button", name="Add comment").click()
    expect(page.locator(".comment-form")).to_have_count(0)


def test_comments_on_lines_in_both_views_go_with_the_decision(open_page, server) -> None:
    title = unique("Tidy app.py")
    stored = server.submit(title, app_diff("import os  # why", "    return sys.argv"))
    page = open_page()
    open_suggestion(page, title)
    page.locator('.segmented [data-mode="unified"]').click()

    # Unified: click the new line's number; the comment shows under it, pending.
    comment_on(page, "Comment on line 6 of app.py", "Keep the argv copy")
    pending = page.locator(".diff-table tr.comment-row .line-comment.pending")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("Keep the argv copy")
    expect(page.locator(".pending-box")).to_contain_text("1 line comment to send")

    # Side by side: a removed line, on the old side, chosen with the keyboard.
    page.locator('.segmented [data-mode="split"]').click()
    expect(page.locator(".diff-table.split")).to_be_visible()
    expect(page.locator(".line-comment.pending")).to_contain_text("Keep the argv copy")
    comment_on(
        page,
        "Comment on line 1 of app.py, before the change",
        "Was os used anywhere?",
        keyboard=True,
    )
    expect(page.locator(".pending-box")).to_contain_text("2 line comments to send")

    # Asking for a revision with only line comments is enough.
    page.get_by_role("button", name="Ask for revision").click()
    expect(page.locator(".detail-head .badge[data-status]")).to_have_text("Revision requested")
    expect(page.locator(".pending-box")).to_be_hidden()
    shown = page.locator(".diff-table tr.comment-row .line-comment")
    expect(shown).to_have_count(2)
    for item in (shown.nth(0), shown.nth(1)):
        expect(item).to_contain_text("rita")
        expect(item).to_contain_text("Asked for a revision")
        expect(item.locator("time")).to_have_count(1)
    old = page.locator('.line-comment[data-side="old"][data-line="1"]')
    expect(old).to_contain_text("Was os used anywhere?")
    # Back in unified, both are still under their lines.
    page.locator('.segmented [data-mode="unified"]').click()
    expect(page.locator(".diff-table.unified tr.comment-row .line-comment")).to_have_count(2)

    got = server.call("agent", "GET", f"/suggestions/{stored['id']}")
    comments = got["reviews"][-1]["comments"]
    assert {(c["file"], c["side"], c["line"], c["body"]) for c in comments} == {
        ("app.py", "new", 6, "Keep the argv copy"),
        ("app.py", "old", 1, "Was os used anywhere?"),
    }


def test_a_pending_comment_can_be_removed_and_cancel_keeps_nothing(open_page, server) -> None:
    title = unique("Small change")
    server.submit(title, app_diff("import os  # a", "    return sys.argv"))
    page = open_page()
    open_suggestion(page, title)
    page.locator('.segmented [data-mode="unified"]').click()
    page.get_by_role("button", name="Comment on line 2 of app.py", exact=True).click()
    page.locator(".comment-form textarea").fill("never mind")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".comment-form")).to_have_count(0)
    expect(
        page.get_by_role("button", name="Comment on line 2 of app.py", exact=True)
    ).to_be_focused()
    comment_on(page, "Comment on line 1 of app.py", "Drop this")
    page.locator(".pending-box").get_by_role(
        "button", name="Remove the comment on app.py:1"
    ).click()
    expect(page.locator(".line-comment.pending")).to_have_count(0)
    expect(page.locator(".pending-box")).to_be_hidden()


def test_comments_from_an_earlier_revision_follow_their_line_or_show_outdated(
    open_page, server: StorykitServer
) -> None:
    title = unique("Two revisions")
    stored = server.submit(title, app_diff("import os  # one", "    return sys.argv"))
    server.call(
        "reviewer2",
        "POST",
        "/suggest/review",
        json={
            "id": stored["id"],
            "action": "revise",
            "comment": "",
            "comments": [
                {"file": "app.py", "line": 1, "side": "new", "body": "Fine as it is"},
                {"file": "app.py", "line": 6, "side": "new", "body": "Return a list"},
            ],
        },
    )
    server.call(
        "agent",
        "POST",
        f"/suggestions/{stored['id']}/revisions",
        json={"diff": app_diff("import os  # one", "    return list(sys.argv)")},
    )
    page = open_page()
    open_suggestion(page, title)
    page.locator('.segmented [data-mode="unified"]').click()
    # The line 1 comment still applies: it is under line 1, saying which revision it was on.
    kept = page.locator(".diff-table tr.comment-row .line-comment", has_text="Fine as it is")
    expect(kept).to_contain_text("sam")
    expect(kept).to_contain_text("revision 1, line 1")
    expect(kept.locator(".tag.outdated")).to_have_count(0)
    # Line 6 changed in revision 2: that comment is listed as outdated, not on a line.
    outdated = page.locator(".outdated-comments .line-comment", has_text="Return a list")
    expect(outdated).to_be_visible()
    expect(outdated.locator(".tag.outdated")).to_have_text("outdated")
    expect(page.locator(".diff-table .line-comment", has_text="Return a list")).to_have_count(0)
    # Side by side shows the same.
    page.locator('.segmented [data-mode="split"]').click()
    expect(
        page.locator(".diff-table.split tr.comment-row .line-comment", has_text="Fine as it is")
    ).to_be_visible()
    expect(page.locator(".outdated-comments .line-comment.outdated")).to_have_count(1)
