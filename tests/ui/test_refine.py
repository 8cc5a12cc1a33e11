"""Refining with an LLM when a refiner is configured (the test plugin's fake one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from ui_harness import StorykitServer, one_line_diff

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorykitServer]:
    srv = StorykitServer(tmp_path_factory.mktemp("storykit"), env={"STORYKIT_UITEST_REFINER": "1"})
    srv.start()
    yield srv
    srv.stop()


def test_refine_makes_a_new_revision(open_page, server) -> None:
    s = server.submit("Refine me", one_line_diff("hello.py", "x = 1", "x = 2", 2), "Short.")
    server.review(s["id"], "approve")
    page = open_page(f"#/suggestions/{s['id']}")
    expect(page.locator(".detail-head .badge[data-status]")).to_have_text("Approved")
    page.get_by_text("Refine with the LLM").click()
    page.get_by_label("Instructions for the refiner").fill("explain the number")
    page.get_by_role("button", name="Refine", exact=True).click()
    expect(page.locator(".detail-head .pair", has_text="Revision")).to_contain_text("2")
    expect(page.locator(".detail-body .prose").first).to_contain_text("Refined: explain the number")
    # A new revision needs a fresh review.
    expect(page.locator(".detail-head .badge[data-status]")).to_have_text("Pending")
