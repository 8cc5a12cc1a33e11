"""The dashboard of a team, in real Chromium, through HAProxy in front of three replicas.

The page's live stream sits on one replica; that replica is killed with ``kill -9``. The
page must reconnect through the balancer by itself (a ticket made on one replica,
redeemed on another) and show every suggestion submitted before, during and after,
each exactly once, without a reload.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from team import HEADERS, load_balancer, replicas, sample_diff

from storykit.testing import tool_missing

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
ADMIN_KEY = "adminkey123"  # team.KEYS: root:admin
RECOVERY = 30_000  # ms: the page backs off up to 5 s between reconnects


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        tool_missing(f"{CHROMIUM} is missing: scripts/system-deps.sh installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


def submit(url: str, title: str, n: int) -> None:
    """Post through the balancer, trying again while it still routes to the dead replica."""
    body = {"title": title, "diff": sample_diff(n)}
    with httpx.Client(timeout=10) as http:
        for _ in range(50):
            try:
                response = http.post(f"{url}/suggestions", headers=HEADERS, json=body)
            except httpx.TransportError:
                continue
            if response.status_code == 201:
                return
            assert response.status_code in (502, 503), response.text
    raise AssertionError(f"could not submit {title!r} through the balancer")


def test_the_live_view_survives_killing_the_replica_it_streams_from(
    tmp_path: Path, database_url: str, haproxy: str, browser: Any
) -> None:
    from playwright.sync_api import expect

    with (
        replicas(tmp_path, database_url, ["asyncio", "asyncio", "trio"]) as team,
        load_balancer(haproxy, tmp_path, team) as url,
    ):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(15_000)
        context.add_init_script(f"localStorage.setItem('storykit.key', {ADMIN_KEY!r})")
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        streamed_from: list[str] = []  # the replica behind each stream the page opened
        page.on(
            "response",
            lambda r: (
                streamed_from.append(r.headers.get("x-replica", "?"))
                if "/events?" in r.url
                else None
            ),
        )
        page.goto(f"{url}/story/ui#/suggestions")
        conn = page.locator("#conn")
        expect(conn).to_have_attribute("data-state", "live")
        page.evaluate("window.__sameDocument = true")  # gone if the page ever reloads

        tag = uuid.uuid4().hex[:6]
        titles = [f"{when} {tag}" for when in ("before", "while down", "also down", "after")]
        items = page.locator(".item-list a.item")
        submit(url, titles[0], 1)
        expect(items.filter(has_text=titles[0])).to_have_count(1)

        assert streamed_from, "the page opened no stream"
        victim = next(r for r in team if r.name == streamed_from[-1])
        opened = len(streamed_from)
        victim.kill()
        submit(url, titles[1], 2)
        submit(url, titles[2], 3)

        # The page notices, reconnects through the balancer to a live replica, catches up.
        expect(conn).to_have_attribute("data-state", re.compile("live|resumed"), timeout=RECOVERY)
        for title in titles[1:3]:
            expect(items.filter(has_text=title)).to_have_count(1, timeout=RECOVERY)
        assert len(streamed_from) > opened
        assert streamed_from[-1] != victim.name  # it now streams from a survivor

        submit(url, titles[3], 4)  # and the new stream delivers live events
        expect(items.filter(has_text=titles[3])).to_have_count(1)
        expect(items.filter(has_text=tag)).to_have_count(len(titles))  # each exactly once
        assert page.evaluate("window.__sameDocument") is True  # no reload happened
        context.close()
    assert not problems, problems
