"""The dashboard's side of issue 16 so far: generate says what it did not store again, and
the status filter offers superseded."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.browser


def run_generate(page: Page) -> Locator:
    page.get_by_role("button", name="Generate…").click()
    dialog = page.get_by_role("dialog", name="Generate suggestions")
    dialog.get_by_label("Paths").fill("hello.py")
    dialog.get_by_role("button", name="Run").click()
    return dialog


def test_generating_twice_stores_once_and_says_so(open_page: Any) -> None:
    page: Page = open_page()
    dialog = run_generate(page)
    expect(dialog.locator(".result")).to_contain_text("1 suggestion created")
    dialog.get_by_role("button", name="Run").click()
    expect(dialog.locator(".result")).to_contain_text(
        "0 suggestions created, 1 unchanged (already open)"
    )
    page.keyboard.press("Escape")
    status = page.get_by_label("Status")
    expect(status.locator("option[value=superseded]")).to_have_text("Superseded")
