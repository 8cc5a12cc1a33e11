"""The System screen, the narrow side-panel layout, and basic accessibility on every screen."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect
from ui_harness import one_line_diff

pytestmark = pytest.mark.browser

UNLABELLED = """() => Array.from(
    document.querySelectorAll('input, select, textarea, button, a[href]'))
  .filter(el => el.offsetParent !== null || el.closest('dialog[open]'))
  .filter(el => {
    if (el.matches('button, a')) return !(el.textContent.trim() || el.getAttribute('aria-label'));
    return !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
      && !el.getAttribute('aria-labelledby');
  })
  .map(el => el.outerHTML.slice(0, 120))"""


def test_system_shows_plugins_health_and_activity(open_page, server) -> None:
    page = open_page("#/system")
    expect(page.locator(".stat", has_text="Health")).to_contain_text("ok")
    expect(page.locator(".stat", has_text="Server version")).to_contain_text(
        re.compile(r"\d+\.\d+")
    )
    expect(page.locator(".stat", has_text="Live connection")).to_contain_text("live")
    plugin = page.locator(".plugins-table tr[data-plugin='uitest']")
    expect(plugin).to_contain_text("storykit-uitest 0.0.0")
    expect(plugin).to_contain_text("source: uitest-src")
    expect(plugin).to_contain_text("planner: uitest-planner")
    expect(plugin).to_contain_text("storykit_register_pr_backends")
    expect(page.get_by_text("No plugin errors.")).to_be_visible()
    title = f"Seen by the activity list {uuid.uuid4().hex[:6]}"
    server.submit(title, one_line_diff("hello.py", "x = 1", "x = 9", 2))
    expect(page.locator(".activity-item").first).to_contain_text("suggest.submitted")
    expect(page.locator(".activity-item").first).to_contain_text(title)


@pytest.mark.parametrize("hash", ["#/suggestions", "#/plans/new", "#/policies", "#/system"])
def test_every_control_has_a_label(open_page, server, hash: str) -> None:
    s = server.submit(
        f"Label check {uuid.uuid4().hex[:6]}", one_line_diff("hello.py", "x = 1", "y = 1", 2)
    )
    page = open_page(hash if hash != "#/suggestions" else f"#/suggestions/{s['id']}", key="admin")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#main h1, #main h2").first).to_be_visible()
    assert page.evaluate(UNLABELLED) == []


def test_focus_is_visible(open_page) -> None:
    page = open_page()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    page.keyboard.press("Tab")  # the skip link
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    focused = page.evaluate_handle("document.activeElement")
    outline = page.evaluate("el => getComputedStyle(el).outlineStyle", focused)
    assert outline != "none"


def test_narrow_side_panel(open_page, server) -> None:
    title = f"Narrow {uuid.uuid4().hex[:6]}"
    server.submit(title, one_line_diff("hello.py", "print('hello')", "print('hello, world')"))
    page = open_page(width=400, height=800)
    item = page.locator(".item-list a.item", has_text=title)
    expect(item).to_be_visible()
    no_overflow = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(no_overflow)
    item.click()
    expect(page.locator("#detail-title")).to_have_text(title)
    expect(page.locator(".list-pane")).to_be_hidden()
    expect(page.get_by_role("button", name="Approve")).to_be_in_viewport()
    assert page.evaluate(no_overflow)
    page.get_by_role("button", name="← All suggestions").click()
    expect(page.locator(".list-pane")).to_be_visible()
    expect(page.locator(".detail-pane")).to_be_hidden()
    for tab in ("Plans", "Policies", "System"):
        page.get_by_role("link", name=tab, exact=True).click()
        expect(page.locator("#main h1")).to_be_visible()
        assert page.evaluate(no_overflow), tab


def test_wide_layout_shows_list_and_detail_together(open_page, server) -> None:
    title = f"Wide {uuid.uuid4().hex[:6]}"
    s = server.submit(title, one_line_diff("hello.py", "x = 1", "x = 10", 2))
    page: Page = open_page(f"#/suggestions/{s['id']}")
    expect(page.locator("#detail-title")).to_have_text(title)
    expect(page.locator(".list-pane")).to_be_visible()
    expect(page.get_by_role("button", name="← All suggestions")).to_be_hidden()
