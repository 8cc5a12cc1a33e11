"""Policies: structured view, JSON editing with errors in place, testing a diff, saving."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect
from ui_harness import one_line_diff

pytestmark = pytest.mark.browser

POLICY = "uitest-words"


def section(page: Page):
    return page.locator(f".policy[data-policy='{POLICY}']")


def editor(page: Page):
    box = section(page)
    if not box.locator("details.editor").evaluate("d => d.open"):
        box.get_by_text("Edit as JSON").click()
    return box.get_by_label(f"{POLICY} settings (JSON)")


def test_rules_are_shown_as_a_table(open_page) -> None:
    page = open_page("#/policies", key="admin")
    table = section(page).locator("table.rules")
    expect(table.locator("caption")).to_have_text("rules (4)")
    expect(table.locator("thead th")).to_have_text(["id", "severity", "pattern", "message"])
    first = table.locator("tbody tr").first
    expect(first.locator("td").nth(0)).to_have_text("no-rm-rf")
    expect(first.locator("td .badge")).to_have_text("deny")
    expect(page.locator(".page-head code")).to_have_text(re.compile(r"^[0-9a-f]{16}$"))
    expect(page.get_by_role("button", name="Save policies")).to_be_disabled()


def test_errors_show_on_the_section_they_concern(open_page) -> None:
    page = open_page("#/policies", key="admin")
    textarea = editor(page)
    original = textarea.input_value()
    textarea.fill(original.replace('"rules"', '"rules" oops'))
    error = section(page).locator(".form-error")
    expect(error).to_contain_text("Not valid JSON")
    expect(textarea).to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Save policies").click()
    expect(textarea).to_be_focused()

    doc = json.loads(original)
    doc["rules"][0]["pattern"] = "(unclosed"
    textarea.fill(json.dumps(doc, indent=2))
    expect(error).to_be_hidden()
    expect(section(page).locator("table.rules tbody tr").first).to_contain_text("(unclosed")
    page.get_by_role("button", name="Save policies").click()
    expect(error).to_contain_text("rule 'no-rm-rf': pattern is not a valid regular expression")
    expect(error).not_to_contain_text(f"{POLICY}:")
    expect(page.locator(".page > [role=alert]")).to_contain_text(f"Not saved: {POLICY}")
    page.get_by_role("button", name="Discard changes").click()
    expect(section(page).locator(".form-error")).to_be_hidden()
    expect(page.get_by_role("button", name="Save policies")).to_be_disabled()


def test_check_a_diff_then_save_a_stricter_policy(open_page, server) -> None:
    page = open_page("#/policies", key="admin")
    diff = one_line_diff("hello.py", "x = 1", "x = 1  # FIXME", 2)
    page.get_by_label("Diff", exact=True).fill(diff)
    page.get_by_role("button", name="Check against saved policy").click()
    result = page.locator(".decision")
    expect(result.locator(".badge").first).to_have_text("outcome: allow")
    expect(result).to_contain_text("No findings")

    version = page.locator(".page-head code").inner_text()
    textarea = editor(page)
    doc = json.loads(textarea.input_value())
    doc["rules"].append(
        {"id": "fixme", "pattern": "FIXME", "severity": "warn", "message": "leaves a FIXME"}
    )
    textarea.fill(json.dumps(doc, indent=2))
    page.get_by_role("button", name="Save policies").click()
    expect(page.locator(".page-head code")).not_to_have_text(version)
    expect(section(page).locator("table.rules caption")).to_have_text("rules (5)")

    page.get_by_role("button", name="Check against saved policy").click()
    expect(result.locator(".badge").first).to_have_text("outcome: warn")
    expect(result.locator(".finding-list")).to_contain_text("leaves a FIXME")
    # The finding is shown on its line of the pasted diff too.
    expect(result.locator("tr.finding-row")).to_contain_text("leaves a FIXME")

    # Put the default back for the other tests.
    doc["rules"].pop()
    server.call("admin", "PUT", "/policies", json={POLICY: doc})


def test_a_save_elsewhere_does_not_clobber_edits(open_page, server) -> None:
    page = open_page("#/policies", key="admin")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    textarea = editor(page)
    doc = json.loads(textarea.input_value())
    textarea.fill(json.dumps(doc, indent=1))  # an edit in progress
    other = json.loads(json.dumps(doc))
    other["rules"] = other["rules"][:3]
    server.call("admin", "PUT", "/policies", json={POLICY: other})
    notice = page.locator(".page > .notice")
    expect(notice).to_contain_text("saved a new version")
    expect(textarea).to_have_value(json.dumps(doc, indent=1))
    notice.get_by_role("button", name=re.compile("Load it")).click()
    expect(section(page).locator("table.rules caption")).to_have_text("rules (3)")
    server.call("admin", "PUT", "/policies", json={POLICY: doc})
    # Without local edits a new version simply shows.
    expect(section(page).locator("table.rules caption")).to_have_text("rules (4)")


def test_a_reviewer_cannot_save(open_page) -> None:
    page = open_page("#/policies", key="reviewer")
    textarea = editor(page)
    textarea.fill(textarea.input_value().replace('"warn"', '"deny"', 1))
    page.get_by_role("button", name="Save policies").click()
    expect(page.locator(".page > [role=alert]")).to_contain_text("needs an admin key")
