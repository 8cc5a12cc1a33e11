"""Bulk decisions from the suggestions list: tick with the mouse (shift-click ranges) or
the keyboard, one comment, approve or reject; each one's outcome on its own row."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect
from ui_harness import StorykitServer, one_line_diff

pytestmark = pytest.mark.browser


def item(page: Page, title: str):
    return page.locator(".item-list li[data-id]", has=page.locator("a.item", has_text=title))


def test_approve_a_range_and_a_keyboard_pick_each_outcome_shown(
    open_page, server: StorykitServer
) -> None:
    tag = uuid.uuid4().hex[:6]
    titles = [f"Bulk {tag} {n}" for n in ("one", "two", "three")]
    ids = [
        server.submit(t, one_line_diff("hello.py", "x = 1", f"x = {n}", 2))["id"]
        for n, t in enumerate(titles, 2)
    ]
    wild = f"Bulk {tag} wild"
    wild_id = server.submit(wild, one_line_diff("build.sh", "make all", "rm -rf / && make all", 2))[
        "id"
    ]
    page = open_page()
    expect(item(page, wild).locator(".badge[data-status]")).to_have_text("Blocked")
    bar = page.get_by_role("region", name="Decide on the selected suggestions")
    expect(bar).to_be_hidden()

    # Newest first: three, two, one. Tick "three", shift-tick "one": the range between.
    item(page, titles[2]).get_by_role("checkbox").click()
    expect(bar).to_be_visible()
    item(page, titles[0]).get_by_role("checkbox").click(modifiers=["Shift"])
    for title in titles:
        expect(item(page, title).get_by_role("checkbox")).to_be_checked()
    expect(bar.locator(".bulk-count")).to_have_text("3 selected")

    # The keyboard: focus the blocked one's row and press s.
    item(page, wild).locator("a.item").focus()
    page.keyboard.press("s")
    expect(item(page, wild).get_by_role("checkbox")).to_be_checked()
    expect(bar.locator(".bulk-count")).to_have_text("4 selected")

    bar.get_by_label("Comment for each").fill("Batch looks fine")
    bar.get_by_role("button", name="Approve 4").click()
    expect(bar.get_by_role("status")).to_have_text("3 approved, 1 refused (still selected).")
    for title in titles:
        expect(item(page, title).locator(".bulk-outcome.ok")).to_have_text("Approved")
        expect(item(page, title).locator(".badge[data-status]")).to_have_text("Approved")
        expect(item(page, title).get_by_role("checkbox")).not_to_be_checked()
    refused = item(page, wild).locator(".bulk-outcome.refused")
    expect(refused).to_contain_text("Refused:")
    expect(refused).to_contain_text("blocked")
    expect(item(page, wild).get_by_role("checkbox")).to_be_checked()
    expect(bar.locator(".bulk-count")).to_have_text("1 selected")

    # One decision per suggestion, each with the one comment.
    for sid in ids:
        got = server.call("agent", "GET", f"/suggestions/{sid}")
        assert got["status"] == "approved"
        assert got["reviews"][-1]["comment"] == "Batch looks fine"
    assert server.call("agent", "GET", f"/suggestions/{wild_id}")["status"] == "blocked"

    # s again unticks it.
    item(page, wild).locator("a.item").focus()
    page.keyboard.press("s")
    expect(item(page, wild).get_by_role("checkbox")).not_to_be_checked()
    expect(bar.locator(".bulk-count")).to_have_text("0 selected")
    expect(bar.get_by_role("button", name="Approve 0")).to_be_disabled()


def test_bulk_reject_asks_first(open_page, server: StorykitServer) -> None:
    tag = uuid.uuid4().hex[:6]
    titles = [f"Reject {tag} {n}" for n in ("a", "b")]
    for n, title in enumerate(titles, 7):
        server.submit(title, one_line_diff("hello.py", "x = 1", f"x = {n}", 2))
    page = open_page()
    page.get_by_label("Agent").fill("bot")  # the list still shows them
    for title in titles:
        item(page, title).get_by_role("checkbox").click()
    bar = page.get_by_role("region", name="Decide on the selected suggestions")
    bar.get_by_role("button", name="Reject 2").click()
    dialog = page.get_by_role("dialog", name="Reject 2 suggestions?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(item(page, titles[0]).locator(".badge[data-status]")).to_have_text("Pending")
    bar.get_by_role("button", name="Reject 2").click()
    dialog.get_by_role("button", name="Reject 2").click()
    expect(bar.get_by_role("status")).to_have_text("2 rejected.")
    for title in titles:
        expect(item(page, title).locator(".bulk-outcome.ok")).to_have_text("Rejected")
        expect(item(page, title).locator(".badge[data-status]")).to_have_text("Rejected")
