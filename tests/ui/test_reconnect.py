"""The live connection across a server restart: reconnecting → resumed, nothing stale.

This module restarts its own server (same port, same data directory).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect
from ui_harness import one_line_diff

pytestmark = pytest.mark.browser

RECOVERY = 20_000  # ms: reconnect attempts back off up to 5 s apart


def test_reconnects_after_a_restart_and_catches_up(open_page, server) -> None:
    before = f"Before the restart {uuid.uuid4().hex[:6]}"
    away = f"While the page was away {uuid.uuid4().hex[:6]}"
    page = open_page()
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-state", "live")
    s = server.submit(before, one_line_diff("hello.py", "x = 1", "x = 11", 2))
    expect(page.locator(".item-list a.item", has_text=before)).to_be_visible()
    page.locator(".item-list a.item", has_text=before).click()
    expect(page.locator("#detail-title")).to_have_text(before)

    # Keep the page away until the restarted server has new events for it.
    page.route("**/events/ticket", lambda route: route.abort())
    server.stop(kill=True)
    expect(conn).to_have_attribute("data-state", re.compile("reconnecting|offline"))
    expect(page.locator("#conn-text")).to_have_text(re.compile("Reconnecting|retrying"))
    server.start()
    server.submit(away, one_line_diff("hello.py", "x = 1", "x = 12", 2))
    server.review(s["id"], "approve", "approved while you were away")
    page.unroute("**/events/ticket")

    expect(conn).to_have_attribute("data-state", "resumed", timeout=RECOVERY)
    expect(page.locator("#conn-text")).to_have_text("Resumed · caught up 2 missed events")
    expect(page.locator(".item-list a.item", has_text=away)).to_be_visible()
    expect(page.locator(".detail-head .badge[data-status]")).to_have_text("Approved")
    expect(page.locator(".history li").first).to_contain_text("approved while you were away")
    expect(conn).to_have_attribute("data-state", "live", timeout=RECOVERY)

    # The stream works again, and the missed events are in the activity list.
    later = f"After the restart {uuid.uuid4().hex[:6]}"
    server.submit(later, one_line_diff("hello.py", "x = 1", "x = 13", 2))
    expect(page.locator(".item-list a.item", has_text=later)).to_be_visible()
    page.get_by_role("link", name="System").click()
    caught = page.locator(".activity-item", has=page.locator(".tag", has_text="caught up"))
    expect(caught).to_have_count(2)
    expect(page.locator(".stat", has_text="Reconnects")).to_contain_text("1")


def test_offline_then_online(open_page, server) -> None:
    page = open_page()
    conn = page.locator("#conn")
    expect(conn).to_have_attribute("data-state", "live")
    page.context.set_offline(True)
    expect(conn).to_have_attribute("data-state", "offline")
    expect(page.locator("#conn-text")).to_have_text("Your device is offline")
    page.context.set_offline(False)
    expect(conn).to_have_attribute("data-state", re.compile("resumed|live"), timeout=RECOVERY)
    title = f"Back online {uuid.uuid4().hex[:6]}"
    server.submit(title, one_line_diff("hello.py", "x = 1", "x = 14", 2))
    expect(page.locator(".item-list a.item", has_text=title)).to_be_visible()


def test_every_reconnect_uses_a_fresh_ticket_not_the_key(open_page, server) -> None:
    page = open_page()
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    expect(page.locator("#conn")).to_have_attribute("data-state", re.compile("live|resumed"))
    title = f"Gives the page an event id {uuid.uuid4().hex[:6]}"
    server.submit(title, one_line_diff("hello.py", "x = 1", "x = 15", 2))
    expect(page.locator(".item-list a.item", has_text=title)).to_be_visible()
    server.stop()
    server.start()
    expect(page.locator("#conn")).to_have_attribute("data-state", "resumed", timeout=RECOVERY)
    streams = [u for u in urls if "/events?" in u]  # the reconnects (listening began after load)
    assert streams, urls
    assert all("ticket=tk_" in u and "key=" not in u for u in streams)
    assert re.search(r"last_event_id=\d+", streams[-1])


def test_a_suggestion_committed_while_the_page_connects_is_shown(open_page, server) -> None:
    """The list is read, then a suggestion is committed, then the stream opens: the
    stream starts from the list's head, so the suggestion arrives (SPEC §5)."""
    title = f"Committed while the page connected {uuid.uuid4().hex[:6]}"
    listed: list[int] = []

    def list_then_commit(route: Any) -> None:
        response = route.fetch()  # the real snapshot, with its head
        if not listed:
            listed.append(response.json()["head"])
            server.submit(title, one_line_diff("hello.py", "x = 1", "x = 16", 2))
        route.fulfill(response=response)

    def hold_the_stream(route: Any) -> None:
        if listed:
            route.continue_()
        else:
            route.abort()  # the page retries a moment later

    def before(page: Any) -> None:
        page.route(re.compile(r"/suggestions\?"), list_then_commit)
        page.route("**/events/ticket", hold_the_stream)

    page = open_page(before=before)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator(".item-list a.item", has_text=title)).to_be_visible()
    assert listed
