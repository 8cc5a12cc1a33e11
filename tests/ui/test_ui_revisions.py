"""A suggestion's revisions, and "changes since revision n" (the interdiff) in the diff view."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect
from ui_harness import StorykitServer

pytestmark = pytest.mark.browser


def app_diff(first: str, last: str) -> str:
    return (
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n"
        f"@@ -1,6 +1,6 @@\n-import os\n+{first}\n import sys\n \n \n def main():\n"
        f"-    return  sys.argv\n+{last}\n"
    )


def three_revisions(server: StorykitServer) -> tuple[str, str]:
    title = f"Evolving change {uuid.uuid4().hex[:6]}"
    stored = server.submit(title, app_diff("import os  # one", "    return sys.argv"))
    for diff, name in (
        (app_diff("import os  # one", "    return list(sys.argv)"), f"{title} (second try)"),
        (app_diff("import os  # three", "    return list(sys.argv)"), f"{title} (third try)"),
    ):
        server.call(
            "agent",
            "POST",
            f"/suggestions/{stored['id']}/revisions",
            json={"diff": diff, "title": name},
        )
    return stored["id"], f"{title} (third try)"


def test_revisions_are_listed_and_an_earlier_one_shows_what_changed_since(
    open_page, server: StorykitServer
) -> None:
    sid, title = three_revisions(server)
    page = open_page(f"#/suggestions/{sid}")
    expect(page.locator("#detail-title")).to_have_text(title)
    page.locator('.segmented [data-mode="unified"]').click()
    revisions = page.locator(".revisions li.revision")
    expect(page.locator("#revisions-title")).to_have_text("Revisions (3)")
    expect(revisions).to_have_count(3)
    # Newest first: number, who, title; the current one is marked.
    expect(revisions.nth(0)).to_contain_text("Revision 3")
    expect(revisions.nth(0)).to_contain_text("current")
    expect(revisions.nth(0)).to_contain_text("(third try)")
    expect(revisions.nth(2)).to_contain_text("Revision 1")
    expect(revisions.nth(2)).to_contain_text("by bot")
    expect(revisions.nth(2).locator("time")).to_have_count(1)

    # The whole change first.
    adds = page.locator(".diff-table tr.line.add")
    expect(adds).to_have_count(2)

    # Changes since revision 2: only the first line changed in between.
    revisions.nth(1).get_by_role("button", name="Changes since revision 2").click()
    expect(page.locator("#diff-title")).to_have_text("Changes since revision 2")
    expect(page.locator(".compare-note")).to_contain_text("not the whole change")
    expect(adds).to_have_count(1)
    expect(adds.first).to_contain_text("import os  # three")
    expect(page.locator(".diff-table tr.line.del").first).to_contain_text("import os  # one")
    # No line comments on an interdiff: its lines are not the suggestion's diff.
    expect(page.locator(".diff-table .ln-comment")).to_have_count(0)

    # The same choice from the diff's own control, in the side-by-side view too.
    page.get_by_label("Show").select_option(label="Changes since revision 1")
    expect(page.locator("#diff-title")).to_have_text("Changes since revision 1")
    page.locator('.segmented [data-mode="split"]').click()
    split_adds = page.locator(".diff-table.split td.code.add")
    expect(split_adds).to_have_count(2)
    expect(page.locator(".diff-table.split")).to_contain_text("return list(sys.argv)")
    expect(page.locator(".diff-table.split")).to_contain_text("import os  # three")

    page.get_by_label("Show").select_option(label="The whole change (revision 3)")
    expect(page.locator("#diff-title")).to_have_text("Changes")
    expect(page.locator(".diff-table .ln-comment").first).to_be_visible()


def test_a_single_revision_offers_no_comparison(open_page, server: StorykitServer) -> None:
    title = f"Only one {uuid.uuid4().hex[:6]}"
    stored = server.submit(title, app_diff("import os  # only", "    return sys.argv"))
    page = open_page(f"#/suggestions/{stored['id']}")
    expect(page.locator("#revisions-title")).to_have_text("Revisions (1)")
    expect(page.get_by_label("Show")).to_have_count(0)
    expect(page.get_by_role("button", name="Changes since revision 1")).to_have_count(0)
