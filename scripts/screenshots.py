"""Regenerate the dashboard screenshots in docs/screenshots/.

    .venv/bin/python scripts/screenshots.py            # every screen, light and dark
    .venv/bin/python scripts/screenshots.py --serve    # just the demo server, to explore

It starts its own storykit server (a temporary repository and data directory) with
demo data, then drives Chromium (/usr/bin/chromium) through each screen. First-party
plugins are used where they are installed and load; the test plugin from
tests/ui/plugin fills in the rest, so the screenshots always show every screen.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from ui_harness import KEYS, StorykitServer  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
FIRST_PARTY = {
    "sources": ["ruff"],
    "planners": ["planner"],
    "pr": ["dry-run"],
    "policies": ["risk-regex", "paths", "hidden-text"],
}

REPO = {
    "src/acme/app.py": "import os\nimport sys\n\n\ndef main():\n    name = sys.argv[1]\n"
    "    print('hello ' + name)\n    return  0\n",
    "src/acme/client.py": "import httpx\n\n\ndef fetch(url):\n    return httpx.get(url).json()\n",
    "docs/README.md": "# acme\n\nA small servcie that greets people.\n",
    "build.sh": "#!/bin/sh\nset -e\nmake all\n",
    "hello.py": "print('hello')\nx = 1\n",
}
APP = "src/acme/app.py"


def _loads(name: str) -> bool:
    for ep in importlib.metadata.entry_points(group="storykit"):
        if ep.name == name:
            try:
                ep.load()
            except Exception:
                return False
            return True
    return False


def plugin_setup() -> tuple[str, dict[str, str]]:
    """STORYKIT_LOAD_PLUGINS and the test plugin's kinds: first-party where it works."""
    load = ["uitest"]
    kinds = []
    for kind, names in FIRST_PARTY.items():
        working = [n for n in names if _loads(n)]
        if working:
            load += working
        else:
            kinds.append(kind)
    if not kinds:
        load.remove("uitest")
    return ",".join(load), {"STORYKIT_UITEST_KINDS": ",".join(kinds)}


def _diff(path: str, hunk: str, *, new: bool = False) -> str:
    if new:
        head = f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n"
        return f"{head}+++ b/{path}\n{hunk}"
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n{hunk}"


def seed(server: StorykitServer) -> dict[str, Any]:
    """Demo suggestions in every state, and a plan to compare."""
    made: dict[str, Any] = {}
    made["imports"] = server.submit(
        "Remove the unused import of os",
        _diff(APP, "@@ -1,5 +1,4 @@\n-import os\n import sys\n \n \n def main():\n"),
        "`os` is imported but never used (F401). Removing it keeps the module's imports honest.",
    )
    made["spacing"] = server.submit(
        "Normalise spacing in the return statement",
        _diff(
            APP,
            "@@ -6,3 +6,3 @@\n     name = sys.argv[1]\n     print('hello ' + name)\n"
            "-    return  0\n+    return 0\n",
        ),
        "Two spaces after `return` (E271).",
    )
    made["status"] = server.submit(
        "Exit with status 2 when no name is given",
        _diff(
            APP,
            "@@ -5,4 +5,6 @@\n def main():\n-    name = sys.argv[1]\n"
            "+    if len(sys.argv) < 2:\n+        return 2\n+    name = sys.argv[1]\n"
            "     print('hello ' + name)\n-    return  0\n+    return 0\n",
        ),
        "Running without an argument crashed with an IndexError; a usage error is kinder.",
    )
    made["readme"] = server.submit(
        "Fix a typo in the README",
        _diff(
            "docs/README.md",
            "@@ -1,3 +1,3 @@\n # acme\n \n"
            "-A small servcie that greets people.\n+A small service that greets people.\n",
        ),
        "servcie → service.",
    )
    made["retry"] = server.submit(
        "Retry transient HTTP failures with backoff",
        _diff(
            "src/acme/client.py",
            "@@ -1,5 +1,12 @@\n import httpx\n+import time\n \n \n def fetch(url):\n"
            "-    return httpx.get(url).json()\n+    for attempt in range(3):\n+        try:\n"
            "+            return httpx.get(url, timeout=10, verify=False).json()\n"
            "+        except httpx.TransportError:  # TODO: log the attempt\n"
            "+            if attempt == 2:\n+                raise\n"
            "+            time.sleep(2 ** attempt)\n",
        ),
        "The upstream API drops about 1% of connections. Three attempts with exponential "
        "backoff hide those blips from users without hammering the service.",
    )
    made["key"] = server.submit(
        "Add the CI deploy key",
        _diff(
            ".ci/deploy_key",
            "@@ -0,0 +1,3 @@\n+-----BEGIN OPENSSH PRIVATE KEY-----\n"
            "+b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
            "+-----END OPENSSH PRIVATE KEY-----\n",
            new=True,
        ),
        "So the deploy job can push tags.",
    )
    made["fstring"] = server.submit(
        "Use an f-string for the greeting",
        _diff(
            APP,
            "@@ -5,4 +5,4 @@\n def main():\n     name = sys.argv[1]\n"
            "-    print('hello ' + name)\n+    print(f'hello {name}')\n     return  0\n",
        ),
        "Easier to read, and consistent with the rest of the code base.",
    )
    for name in ("imports", "spacing", "status", "readme"):
        server.review(made[name]["id"], "approve", "Looks good." if name == "readme" else "")
    server.call(
        "reviewer2",
        "POST",
        "/suggest/review",
        json={
            "id": made["fstring"]["id"],
            "action": "revise",
            "comment": "Please keep the greeting in one place: main() is not the only caller.",
            "comments": [
                {"file": APP, "line": 7, "side": "new", "body": "Move this into a greeting()."},
                {"file": APP, "line": 8, "side": "new", "body": "Two spaces after return."},
            ],
        },
    )
    server.call(
        "agent",
        "POST",
        f"/suggestions/{made['fstring']['id']}/revisions",
        json={
            "diff": _diff(
                APP,
                "@@ -2,7 +2,11 @@\n import sys\n \n \n+def greeting(name):\n"
                "+    return f'hello {name}'\n+\n+\n def main():\n     name = sys.argv[1]\n"
                "-    print('hello ' + name)\n+    print(greeting(name))\n     return  0\n",
            ),
            "title": "Build the greeting in one place",
        },
    )
    ids = [made[k]["id"] for k in ("imports", "spacing", "status", "readme")]
    made["plan"] = server.call(
        "reviewer", "POST", "/plan", json={"goal": "Tidy up the app module", "suggestion_ids": ids}
    )
    return made


def shoot(server: StorykitServer, made: dict[str, Any]) -> list[Path]:
    from playwright.sync_api import expect, sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    retry_id = made["retry"]["id"]
    plan_id = made["plan"]["id"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        def page_for(
            width: int = 1280, height: int = 800, scheme: str = "light", key: str = "reviewer"
        ) -> Any:
            context = browser.new_context(
                viewport={"width": width, "height": height},
                color_scheme=scheme,
                device_scale_factor=1,
            )
            context.add_init_script(
                f"localStorage.setItem('storykit.key', {json.dumps(KEYS[key])})"
            )
            return context.new_page()

        def save(page: Any, name: str) -> None:
            path = OUT / f"{name}.png"
            page.mouse.move(0, 0)
            page.evaluate("document.querySelectorAll('.toast').forEach((t) => t.remove())")
            page.screenshot(path=str(path))
            written.append(path)

        # The key gate, on a first visit.
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{server.url}/story/ui")
        expect(page.get_by_label("API key")).to_be_visible()
        save(page, "connect")
        context.close()

        for scheme, suffix in (("light", ""), ("dark", "-dark")):
            page = page_for(scheme=scheme)
            page.goto(f"{server.url}/story/ui#/suggestions/{retry_id}")
            expect(page.locator(".conn")).to_have_attribute("data-state", "live")
            expect(page.locator(".diff-file")).to_have_count(1)
            save(page, f"suggestions{suffix}")
            page.context.close()

        page = page_for()
        page.goto(f"{server.url}/story/ui#/suggestions/{retry_id}")
        expect(page.locator(".diff-file")).to_have_count(1)
        page.get_by_role("button", name="Side by side").click()
        expect(page.locator(".diff-table.split")).to_be_visible()
        save(page, "suggestion-split")
        page.get_by_role("button", name="Unified").click()
        page.goto(f"{server.url}/story/ui#/suggestions/{made['key']['id']}")
        expect(page.locator(".detail-head h2")).to_have_text("Add the CI deploy key")
        save(page, "suggestion-blocked")
        page.keyboard.press("?")
        expect(page.locator("#shortcuts")).to_be_visible()
        save(page, "shortcuts")
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Generate…").click()
        dialog = page.locator("dialog.generate")
        dialog.get_by_label("Paths").fill("src/acme")
        dialog.get_by_role("button", name="Run").click()
        expect(dialog.locator(".result")).to_contain_text("created")
        created = dialog.locator(".result a").first.inner_text()
        expect(page.locator(".item-list a.item", has_text=created)).to_be_visible()
        save(page, "generate")
        page.context.close()

        page = page_for()
        page.goto(f"{server.url}/story/ui#/plans/{plan_id}")
        expect(page.locator(".variant")).to_have_count(len(made["plan"]["variants"]))
        page.locator(".variant").first.get_by_role("button", name="Select this variant").click()
        expect(page.locator(".variant.selected")).to_have_count(1)
        page.locator(".variant").first.locator("summary").click()
        page.locator(".detail-pane").evaluate("el => el.scrollTo(0, 0)")
        save(page, "plan-variants")
        page.get_by_role("button", name="Preview PR (dry run)").click()
        expect(page.locator(".pr-result")).to_be_visible()
        page.locator(".pr-panel").evaluate("el => el.scrollIntoView({block: 'start'})")
        save(page, "plan-pr-dry-run")
        page.goto(f"{server.url}/story/ui#/plans/new")
        expect(page.locator(".suggestion-check")).not_to_have_count(0)
        page.get_by_label("Goal").fill("Ship the README fix and the import cleanup")
        save(page, "plan-new")
        page.context.close()

        page = page_for(key="admin")
        page.goto(f"{server.url}/story/ui#/policies")
        ruled = page.locator(".policy", has=page.locator("table.rules")).first
        expect(ruled).to_be_visible()
        page.get_by_label("Diff", exact=True).fill(made["retry"]["diff"])
        page.get_by_role("button", name="Check against saved policy").click()
        expect(page.locator(".decision")).to_be_visible()
        save(page, "policies")
        ruled.get_by_text("Edit as JSON").click()
        textarea = ruled.locator("textarea")
        doc = json.loads(textarea.input_value())
        doc["rules"][0]["pattern"] = "(?P<unclosed"
        textarea.fill(json.dumps(doc, indent=2))
        page.get_by_role("button", name="Save policies").click()
        error = ruled.locator(".form-error")
        expect(error).to_be_visible()
        error.evaluate("el => el.scrollIntoView({block: 'center'})")
        save(page, "policies-error")
        page.context.close()

        page = page_for()
        page.goto(f"{server.url}/story/ui#/system")
        expect(page.locator(".plugins-table")).to_be_visible()
        save(page, "system")
        page.context.close()

        page = page_for(width=400, height=800)
        page.goto(f"{server.url}/story/ui#/suggestions")
        expect(page.locator(".item-list .item").first).to_be_visible()
        save(page, "narrow-list")
        page.goto(f"{server.url}/story/ui#/suggestions/{retry_id}")
        expect(page.locator(".diff-file")).to_have_count(1)
        save(page, "narrow-detail")
        page.context.close()

        # Line comments and the changes since an earlier revision.
        page = page_for()
        page.goto(f"{server.url}/story/ui#/suggestions/{made['fstring']['id']}")
        expect(page.locator("#revisions-title")).to_have_text("Revisions (2)")
        page.get_by_role("button", name="Unified").click()
        page.get_by_role("button", name=f"Comment on line 11 of {APP}", exact=True).click()
        page.locator(".comment-form textarea").fill("Add a test for greeting().")
        page.get_by_role("button", name="Add comment").click()
        expect(page.locator(".line-comment.pending")).to_have_count(1)
        page.locator(".outdated-comments").evaluate("el => el.scrollIntoView({block: 'center'})")
        save(page, "line-comments")
        page.get_by_role("button", name="Changes since revision 1").click()
        expect(page.locator("#diff-title")).to_have_text("Changes since revision 1")
        page.locator("#diff-title").evaluate("el => el.scrollIntoView({block: 'center'})")
        save(page, "revisions-interdiff")
        page.context.close()

        # Bulk decisions: the last shot, since it changes what the others show.
        page = page_for()
        page.goto(f"{server.url}/story/ui#/suggestions")
        for title in ("Retry transient HTTP failures with backoff", "Add the CI deploy key"):
            row = page.locator(".item-list li[data-id]", has=page.locator("a.item", has_text=title))
            row.get_by_role("checkbox").click()
        bar = page.locator(".bulk-bar")
        bar.get_by_label("Comment for each").fill("Reviewed together with the on-call notes.")
        bar.get_by_role("button", name="Approve 2").click()
        expect(page.locator(".bulk-outcome.refused")).to_have_count(1)
        expect(page.locator(".item-list .badge.status-approved")).not_to_have_count(0)
        save(page, "bulk")
        page.context.close()
        browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="start the demo server and wait")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args()
    load, env = plugin_setup()
    # SIGTERM ends the script like Ctrl-C, so the server child is stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="storykit-shots-") as tmp:
        server = StorykitServer(Path(tmp), plugins=load, env=env, port=args.port, repo_files=REPO)
        server.start()
        try:
            made = seed(server)
            if args.serve:
                print(f"demo server: {server.url}/story/ui  (plugins: {load})")
                print("keys: " + ", ".join(f"{role}={key}" for role, key in KEYS.items()))
                while True:
                    time.sleep(3600)
            for path in shoot(server, made):
                print(path.relative_to(ROOT))
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
