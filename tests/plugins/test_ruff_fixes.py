"""ruff's diagnostics → drafts (:mod:`storykit_plugins.ruff.fixes`): pure, table tests,
no subprocess. The oracle comparisons with ``ruff --fix`` itself are in test_ruff_source.py."""

from __future__ import annotations

from typing import Any

import pytest

from storykit.backends import Draft
from storykit_plugins._git import TreeEntry
from storykit_plugins.ruff import fixes

ROOT = "/export/tree"
ENTRY = TreeEntry(mode="100644", oid="0" * 40, path="f.py")


def diag(
    start: tuple[int, int],
    end: tuple[int, int],
    content: str,
    *,
    code: str = "X1",
    applicability: str = "safe",
    message: str = "",
    filename: str = f"{ROOT}/f.py",
) -> dict[str, Any]:
    """A diagnostic with one edit replacing (row, column)…(row, column) with ``content``."""
    where = {"row": start[0], "column": start[1]}
    until = {"row": end[0], "column": end[1]}
    edit = {"content": content, "location": where, "end_location": until}
    return {
        "code": code,
        "name": "x-rule",
        "message": message or f"fix at {start}",
        "url": "https://docs.astral.sh/ruff/rules/x-rule",
        "filename": filename,
        "location": where,
        "end_location": until,
        "fix": {"applicability": applicability, "message": "Fix it", "edits": [edit]},
    }


def drafts(text: str, *diagnostics: dict[str, Any]) -> list[Draft]:
    reports: list[tuple[int, int]] = []
    context = fixes.Context(
        commit="c" * 40, roots=(ROOT,), report=lambda done, total: reports.append((done, total))
    )
    made = fixes.drafts(list(diagnostics), {"f.py": text}, {"f.py": ENTRY}, context)
    groups = len({(d["code"]) for d in diagnostics if d["fix"]["applicability"] == "safe"})
    assert not groups or reports[-1] == (groups, groups)
    return made


def body(draft: Draft) -> str:
    """The diff's hunk lines, without the headers."""
    return "\n".join(draft.diff.split("\n")[4:])


CASES = [
    pytest.param(
        "abcdef\n",
        [diag((1, 1), (1, 3), "AB"), diag((1, 5), (1, 6), "E")],
        "@@ -1,1 +1,1 @@\n-abcdef\n+ABcdEf\n",
        2,
        id="two-fixes-one-line",
    ),
    pytest.param(
        "x = 1   \n",
        [diag((1, 6), (1, 9), "")],
        "@@ -1,1 +1,1 @@\n-x = 1   \n+x = 1\n",
        1,
        id="trailing-space",
    ),
    pytest.param(
        "é€ = 1  \n",
        [diag((1, 7), (1, 9), "")],
        "@@ -1,1 +1,1 @@\n-é€ = 1  \n+é€ = 1\n",
        1,
        id="columns-count-characters",
    ),
    pytest.param(
        "\ufeffx = 1 \n",
        [diag((1, 6), (1, 7), "")],
        "@@ -1,1 +1,1 @@\n-\ufeffx = 1 \n+\ufeffx = 1\n",
        1,
        id="byte-order-mark-not-counted",
    ),
    pytest.param(
        "a = 1\r\nb = 2 \r\n",
        [diag((2, 6), (2, 7), "")],
        "@@ -1,2 +1,2 @@\n a = 1\r\n-b = 2 \r\n+b = 2\r\n",
        1,
        id="crlf-rows",
    ),
    pytest.param(
        "x = 1",
        [diag((1, 6), (1, 6), "\n")],
        "@@ -1,1 +1,1 @@\n-x = 1\n\\ No newline at end of file\n+x = 1\n",
        1,
        id="newline-at-end",
    ),
]


@pytest.mark.parametrize(("text", "diagnostics", "hunks", "fixed"), CASES)
def test_fixes_become_one_draft(
    text: str, diagnostics: list[dict[str, Any]], hunks: str, fixed: int
) -> None:
    (draft,) = drafts(text, *diagnostics)
    assert body(draft) == hunks
    assert draft.diff.startswith("diff --git a/f.py b/f.py\nindex 0000000000")
    assert draft.base_ref == "c" * 40
    assert draft.metadata["fixes"] == fixed
    assert (draft.metadata["file"], draft.metadata["rule"]) == ("f.py", "X1")


def test_overlapping_fixes_wait_and_shared_fixes_count_once() -> None:
    same = diag((1, 1), (1, 3), "AB")
    (draft,) = drafts(
        "abcdef\n",
        same,
        diag((1, 2), (1, 4), "zz"),  # overlaps the first: waits for the next run
        dict(same, message="again"),  # the same fix as the first: counted, applied once
        diag((1, 5), (1, 6), "E"),
        diag((1, 6), (1, 7), "F", applicability="unsafe"),  # never proposed
    )
    assert body(draft) == "@@ -1,1 +1,1 @@\n-abcdef\n+ABcdEf\n"
    assert draft.metadata["fixes"] == 3
    assert "1 more place(s) overlap" in draft.rationale


@pytest.mark.parametrize(
    ("diagnostics", "why"),
    [
        ([diag((1, 1), (1, 2), "a")], "a fix that changes nothing"),
        ([diag((1, 1), (1, 2), "Z", applicability="unsafe")], "only unsafe fixes"),
        ([diag((1, 1), (1, 2), "Z", filename="/elsewhere/f.py")], "a file outside the export"),
        ([diag((1, 1), (1, 2), "Z", filename=f"{ROOT}/g.py")], "a file not among the sources"),
    ],
)
def test_no_draft(diagnostics: list[dict[str, Any]], why: str) -> None:
    context = fixes.Context(commit="c" * 40, roots=(ROOT,))
    assert fixes.drafts(diagnostics, {"f.py": "abc\n"}, {"f.py": ENTRY}, context) == [], why


@pytest.mark.parametrize(
    ("diagnostics", "title"),
    [
        ([diag((1, 1), (1, 2), "A", message="Bad a")], "ruff X1: Bad a in f.py"),
        (
            [diag((1, 1), (1, 2), "A", message="Bad"), diag((1, 3), (1, 4), "C", message="Bad")],
            "ruff X1: Bad in f.py (2 places)",
        ),
        (
            [diag((1, 1), (1, 2), "A", message="a"), diag((1, 3), (1, 4), "C", message="c")],
            "ruff X1: Fix it in f.py (2 places)",  # different messages, one fix message
        ),
    ],
)
def test_titles(diagnostics: list[dict[str, Any]], title: str) -> None:
    (draft,) = drafts("abcdef\n", *diagnostics)
    assert draft.title == title
    assert draft.rationale.endswith(
        "ruff rule X1 (x-rule), safe automatic fix: https://docs.astral.sh/ruff/rules/x-rule"
    )


def test_one_draft_per_rule_and_file_in_order() -> None:
    made = drafts(
        "abc\n",
        diag((1, 1), (1, 2), "A", code="B2"),
        diag((1, 3), (1, 4), "C", code="A1"),
    )
    assert [d.metadata["rule"] for d in made] == ["A1", "B2"]
    assert [body(d) for d in made] == [
        "@@ -1,1 +1,1 @@\n-abc\n+abC\n",
        "@@ -1,1 +1,1 @@\n-abc\n+Abc\n",
    ]


def test_relative_names() -> None:
    roots = ("/tmp/x", "/private/tmp/x")
    assert fixes.relative("/private/tmp/x/pkg/a.py", roots) == "pkg/a.py"
    assert fixes.relative("/tmp/xy/a.py", roots) is None
    assert fixes.relative(None, roots) is None
