"""Browser tests of the dashboard: real Chromium (Playwright) against a real server process.

- One server per test module (``server``), started by :class:`ui_harness.StorykitServer`.
- One browser per session; each test gets fresh contexts from ``open_page``.
- A page error or a Content-Security-Policy violation fails the test.
- A failing test leaves a screenshot of each of its pages in ``test-artifacts/``.
- Without ``/usr/bin/chromium`` the tests skip, saying how to install it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ui_harness import KEYS, StorykitServer

from storykit.testing import tool_missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
_CSP = re.compile(r"Content Security Policy|Refused to (load|execute|apply|connect|frame)", re.I)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# Module scope: sync Playwright runs an asyncio loop in this thread while it is open,
# and the async tests collected after tests/ui need the thread to themselves.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        tool_missing(
            f"{CHROMIUM} is missing: install it with"
            " `apt-get install --no-install-recommends chromium` (scripts/system-deps.sh does)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StorykitServer]:
    srv = StorykitServer(tmp_path_factory.mktemp("storykit"))
    srv.start()
    yield srv
    srv.stop()


class PageProblems:
    """Page errors and CSP violations seen by a page."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def watch(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.items.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                self.items.append(f"console: {msg.text}") if _CSP.search(msg.text) else None
            ),
        )


@pytest.fixture
def open_page(
    request: pytest.FixtureRequest, browser: Any, server: StorykitServer
) -> Iterator[Callable[..., Any]]:
    """``open_page(hash="#/suggestions", key="reviewer", width=1280, height=800, url=None,
    before=None)``.

    ``key`` is a role name from ``ui_harness.KEYS`` (stored in localStorage before the
    page loads, as if typed earlier), or None for a first visit. ``before(page)`` runs
    before the page loads (to install routes, say).
    """
    contexts: list[Any] = []
    pages: list[Any] = []
    problems = PageProblems()

    def _open(
        hash: str = "#/suggestions",
        *,
        key: str | None = "reviewer",
        width: int = 1280,
        height: int = 800,
        url: str | None = None,
        before: Callable[[Any], None] | None = None,
    ) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height})
        context.set_default_timeout(10_000)
        if key is not None:
            context.add_init_script(
                "try { if (window.parent === window) localStorage.setItem('storykit.key', "
                f"{json.dumps(KEYS[key])}) }} catch (e) {{}}"
            )
        contexts.append(context)
        page = context.new_page()
        problems.watch(page)
        pages.append(page)
        if before is not None:
            before(page)
        page.goto(url or f"{server.url}/story/ui{hash}")
        return page

    yield _open
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for index, page in enumerate(pages):
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}-{index}.png"), full_page=True)
            except Exception as exc:  # a closed page must not hide the real failure
                print(f"screenshot failed: {exc}")
        print(f"server log:\n{server.log_tail()}")
    for context in contexts:
        context.close()
    assert not problems.items, "the page reported problems:\n" + "\n".join(problems.items)


@pytest.fixture
def js(open_page: Callable[..., Any]) -> Callable[..., Any]:
    """``js(module, body, arg=None)``: run ``body`` in a page with the dashboard module
    ``module`` (under ui/js/) imported as ``m``; returns what ``body`` returns."""
    page = open_page(key=None)
    page.wait_for_function("document.documentElement.dataset.static")

    def run(module: str, body: str, arg: Any = None) -> Any:
        return page.evaluate(
            f"""async (arg) => {{
                const m = await import(document.documentElement.dataset.static + "/js/{module}");
                {body}
            }}""",
            arg,
        )

    return run
