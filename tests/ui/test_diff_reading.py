"""Diffs that read like code: syntax highlighting (the vendored highlight.js, served by
storykit under the page's CSP), changed words marked inside changed lines, and big files
collapsed and rendered only when opened. The pure functions run in Chromium as modules;
the views on a real server."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MINUS = "\u2212"  # the dashboard's sign of a removed line


# -- changed words ----------------------------------------------------------------------
def test_word_diff_marks_what_changed_between_two_lines(js) -> None:
    found = js(
        "diff.js",
        "return arg.map(([a, b]) => m.wordDiff(a, b))",
        [
            ["    return  sys.argv", "    return sys.argv[1:]"],
            ["timeout = 30", "timeout = 60"],
            ["same", "same"],
            ["import os", "from pathlib import Path as P, PurePath"],
            ["naïve café", "naïve bistro"],
        ],
    )
    assert found[0] == {"del": [[10, 12]], "add": [[10, 11], [19, 23]]}
    assert found[1] == {"del": [[10, 12]], "add": [[10, 12]]}
    assert found[2] == {"del": [], "add": []}
    assert found[3] is None  # too little in common: the whole line is the change
    assert found[4] == {"del": [[6, 10]], "add": [[6, 12]]}  # words are Unicode words


def test_changed_words_pair_removed_and_added_lines_as_side_by_side_does(js) -> None:
    diff = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,4 +1,4 @@\n"
        " keep\n-x = 1\n-y = 2\n+x = 10\n+y = 2  # same\n z\n"
    )
    marks = js(
        "diff.js",
        """const [file] = m.parseDiff(arg);
        const marks = m.changedWords(file.hunks[0]);
        return file.hunks[0].lines.map((l) => [l.kind, l.text, marks.get(l) || null]);""",
        diff,
    )
    assert marks == [
        ["context", "keep", None],
        ["del", "x = 1", [[4, 5]]],
        ["del", "y = 2", None],  # nothing removed from it: only added after it
        ["add", "x = 10", [[4, 6]]],
        ["add", "y = 2  # same", [[5, 13]]],
        ["context", "z", None],
    ]


# -- highlighting, as data ------------------------------------------------------------------
def test_highlighted_lines_are_data_and_never_markup(js) -> None:
    out = js(
        "syntax.js",
        """return {
          py: m.languageFor("src/app.py"), make: m.languageFor("Makefile"),
          none: m.languageFor("LICENSE"), unknown: m.languageFor("x.qqq"),
          lines: m.highlightLines(arg, "py"),
          bad: m.splitHtml('<img src=x onerror="alert(1)">', 1),
          unbalanced: m.splitHtml('</span>x', 1),
        }""",
        ['s = "<img src=x onerror=alert(1)>"  # a string', "def f(a):", "    return a"],
    )
    assert (out["py"], out["make"], out["none"], out["unknown"]) == ("py", "makefile", None, None)
    first, second, third = out["lines"]
    assert "".join(p["text"] for p in first) == 's = "<img src=x onerror=alert(1)>"  # a string'
    assert {"text": '"<img src=x onerror=alert(1)>"', "cls": "hljs-string"} in first
    assert {"text": "# a string", "cls": "hljs-comment"} in first
    assert {"text": "def", "cls": "hljs-keyword"} in second
    assert {"text": "return", "cls": "hljs-keyword"} in third
    assert out["bad"] is None and out["unbalanced"] is None  # not highlight.js's: dropped


def test_segments_cut_highlighted_pieces_at_changed_words(js) -> None:
    out = js(
        "syntax.js",
        "return m.segments(arg.text, arg.pieces, arg.marks)",
        {
            "text": "return 10",
            "pieces": [
                {"text": "return", "cls": "hljs-keyword"},
                {"text": " ", "cls": ""},
                {"text": "10", "cls": "hljs-number"},
            ],
            "marks": [[4, 6], [8, 9]],
        },
    )
    assert [(s["text"], s["cls"], s["mark"]) for s in out] == [
        ("retu", "hljs-keyword", False),
        ("rn", "hljs-keyword", True),
        (" ", "", False),
        ("1", "hljs-number", False),
        ("0", "hljs-number", True),
    ]


# -- in the dashboard --------------------------------------------------------------------------
PY_DIFF = (
    "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1,6 +1,6 @@\n"
    " import os\n import sys\n \n \n def main():\n"
    "-    return  sys.argv\n+    return sys.argv[1:]\n"
    "diff --git a/notes.txt b/notes.txt\n--- a/notes.txt\n+++ b/notes.txt\n@@ -1 +1 @@\n"
    '-say "<b>hi</b>" <img src=x onerror=alert(1)>\n'
    '+say "<b>hello</b>" <img src=x onerror=alert(1)>\n'
)


def test_the_diff_is_highlighted_with_changed_words_marked(open_page, server) -> None:
    s = server.submit(f"Highlight {uuid.uuid4().hex[:6]}", PY_DIFF)
    page = open_page(f"#/suggestions/{s['id']}")
    app = page.locator(".diff-file[data-path='app.py']")
    table = app.locator("table.diff-table.unified")
    expect(table).to_have_attribute("data-language", "py")
    expect(table.locator("tr.line.context .hljs-keyword", has_text="import").first).to_be_visible()
    expect(table.locator("tr.line.context .hljs-title.function_")).to_have_text("main")
    deleted = table.locator("tr.line.del")
    added = table.locator("tr.line.add")
    expect(deleted.locator(".hljs-keyword")).to_have_text("return")
    expect(deleted.locator("mark.wd")).to_have_text(["  "])  # the doubled space went
    # " " went, "[1:]" came: marked, and still highlighted (the 1 is a number).
    expect(added.locator("mark.wd")).to_have_text([" ", "[", "1", ":]"])
    expect(added.locator("mark.wd.hljs-number")).to_have_text("1")
    # The text is unchanged by the markup: what the row says is the line.
    expect(deleted.locator("td.code")).to_have_text(f"{MINUS}    return  sys.argv")
    expect(added.locator("td.code")).to_have_text("+    return sys.argv[1:]")

    # Plain text has no language, but its changed word is marked; markup in it is text.
    notes = page.locator(".diff-file[data-path='notes.txt'] table.diff-table")
    expect(notes).to_have_attribute("data-language", "")
    expect(notes.locator("tr.line.add mark.wd")).to_have_text(["hello"])
    expect(notes.locator("img, b")).to_have_count(0)
    expect(notes.locator("tr.line.add td.code")).to_contain_text("<img src=x onerror=alert(1)>")

    page.get_by_role("button", name="Side by side").click()
    pair = app.locator("table.diff-table.split tr.line.pair", has=page.locator("td.code.del"))
    expect(pair.locator("td.code.del mark.wd")).to_have_text(["  "])
    expect(pair.locator("td.code.add mark.wd")).to_have_text([" ", "[", "1", ":]"])
    expect(pair.locator("td.code.add .hljs-keyword")).to_have_text("return")
    page.get_by_role("button", name="Unified").click()

    # highlight.js came from storykit itself (the page's CSP allows nothing else).
    loaded = page.evaluate("performance.getEntriesByType('resource').map((r) => r.name)")
    vendored = [u for u in loaded if u.endswith("/vendor/highlightjs/highlight.min.js")]
    assert vendored and all(u.startswith(server.url) for u in loaded), loaded


def big_diff(path: str, lines: int) -> str:
    body = "".join(f"+line {n} = {n}\n" for n in range(1, lines + 1))
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1,{lines} @@\n{body}"
    )


def test_a_big_file_is_collapsed_and_rendered_when_opened(open_page, server) -> None:
    diff = big_diff("gen/big.py", 600) + big_diff("small.py", 3)
    s = server.submit(f"Big {uuid.uuid4().hex[:6]}", diff)
    page = open_page(f"#/suggestions/{s['id']}")
    big = page.locator(".diff-file[data-path='gen/big.py']")
    small = page.locator(".diff-file[data-path='small.py']")
    expect(small.locator("tr.line.add")).to_have_count(3)  # small files render at once
    expect(big).to_have_class(re.compile(r"\bcollapsed\b"))
    expect(big.locator(".tag.large")).to_have_text("600 lines")
    expect(big.locator(".diff-file-toggle")).to_have_attribute("aria-expanded", "false")
    expect(big.locator("tr.line")).to_have_count(0)  # not rendered at all yet
    big.get_by_role("button", name="Show this file's diff (600 lines)").click()
    expect(big.locator("tr.line.add")).to_have_count(600)
    expect(big.locator(".diff-file-toggle")).to_have_attribute("aria-expanded", "true")
    expect(big.locator("tr.line.add").first.locator(".hljs-number").first).to_have_text("1")
    big.locator(".diff-file-toggle").click()  # and it folds away again, kept rendered
    expect(big.locator(".diff-body")).to_be_hidden()
    expect(big.get_by_role("button", name=re.compile("Show this file's diff"))).to_be_visible()


def test_a_finding_in_a_collapsed_file_opens_it_at_its_line(open_page, server) -> None:
    lines = 500
    body = "".join(
        f"+value_{n} = {n}{'  # TODO later' if n == 450 else ''}\n" for n in range(1, lines + 1)
    )
    diff = (
        "diff --git a/gen/todo.py b/gen/todo.py\nnew file mode 100644\n--- /dev/null\n"
        f"+++ b/gen/todo.py\n@@ -0,0 +1,{lines} @@\n{body}"
    )
    s = server.submit(f"Finding {uuid.uuid4().hex[:6]}", diff)
    page = open_page(f"#/suggestions/{s['id']}")
    file = page.locator(".diff-file[data-path='gen/todo.py']")
    expect(file).to_have_class(re.compile(r"\bcollapsed\b"))
    where = page.locator(".finding-list .finding-where")
    expect(where).to_have_text("gen/todo.py:450")
    where.click()
    row = file.locator("tr.line.add.has-finding")
    expect(row).to_be_visible()
    expect(row.locator("td.ln").nth(1)).to_have_text("450")
    expect(file.locator(".diff-file-notes .finding")).to_have_count(0)  # inline, not loose
