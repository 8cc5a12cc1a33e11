"""The raw-diff scanner the policies share: it must place lines exactly as ``parse_diff`` does."""

from __future__ import annotations

import random

import pytest
import re2

from storykit.diffs import parse_diff
from storykit.testing import make_diff
from storykit_plugins.policies._diffscan import (
    FileChange,
    Prefilter,
    options,
    raw_line_pattern,
    scan,
)

# Lines that look like diff structure when they are content.
_TRICKY = [
    "-- sql comment",
    "++ counter",
    "--- a/fake.py",
    "+++ b/fake.py",
    "@@ -1,2 +1,2 @@ not a header",
    "diff --git a/x b/x",
    "\\ backslash",
    "",
    " leading space",
    "rename to evil",
]
_WORDS = ["alpha", "beta = 1", "return x", "# note", "key = 'AKIA'", "x += 1"]


def _random_text(rnd: random.Random) -> str:
    lines = [rnd.choice(_TRICKY + _WORDS * 3) for _ in range(rnd.randint(0, 12))]
    return "".join(line + "\n" for line in lines)


def _random_diff(rnd: random.Random, *, git: bool) -> str:
    parts = []
    for i in range(rnd.randint(1, 5)):
        old = _random_text(rnd)
        new = _random_text(rnd) if rnd.random() < 0.9 else ""
        if old == new:
            new += "changed\n"
        diff = make_diff(f"pkg/file{i}.py", old, new)
        if not new:  # what git writes for a deletion (and unidiff needs)
            header, rest = diff.split("\n", 1)
            diff = f"{header}\ndeleted file mode 100644\n{rest}"
        if not git:
            # A plain diff -u: no "diff --git" line or git's extended headers.
            diff = diff.split("\n--- ", 1)[1]
            diff = "--- " + diff
        parts.append(diff)
    return "".join(parts)


def _reference(diff: str) -> list[tuple[str, int, str]]:
    return [(a.file, a.line, a.text) for a in parse_diff(diff).added_lines()]


def _scanned(diff: str, patterns: list[str]) -> list[tuple[str, int, str]]:
    result = scan(diff.encode(), Prefilter(patterns))
    return [(line.file, line.line, line.text.decode()) for line in result.lines]


@pytest.mark.parametrize("git", [True, False], ids=["git", "plain"])
@pytest.mark.parametrize("seed", range(40))
def test_every_added_line_is_placed_as_parse_diff_places_it(seed: int, git: bool) -> None:
    diff = _random_diff(random.Random(seed), git=git)
    # "." selects every non-empty line (an empty added line has nothing to match).
    expected = [item for item in _reference(diff) if item[2]]
    # The prefilter may also select other lines; callers re-check, and so does this test.
    got = [item for item in _scanned(diff, ["."]) if item[2]]
    assert got == expected


@pytest.mark.parametrize("git", [True, False], ids=["git", "plain"])
@pytest.mark.parametrize("seed", range(20))
def test_the_files_a_diff_touches_are_those_parse_diff_reads(seed: int, git: bool) -> None:
    diff = _random_diff(random.Random(seed), git=git)
    patch = parse_diff(diff).patch
    expected = [None if f.is_removed_file else f.target_file.removeprefix("b/") for f in patch]
    got = [f.target for f in scan(diff.encode(), Prefilter([])).files]
    assert got == expected


# Each pattern, searched in each added line on its own, against the same through the scan.
_ANCHORED = [
    r"^x",
    r"^\s*#",
    r"1$",
    r"\Abeta",
    r"x\z",
    r"^$x|^beta",
    r"\bkey\b",
    r"(?m)^alpha$",
    r"[\^$]",
    r"\Q^x$\E",
    r"\p{Greek}|^\pL+$",
    r"^(?i:ALPHA)",
]


@pytest.mark.parametrize("pattern", _ANCHORED)
@pytest.mark.parametrize("seed", range(10))
def test_anchored_patterns_select_every_line_they_match(pattern: str, seed: int) -> None:
    diff = _random_diff(random.Random(seed), git=True) + make_diff(
        "z.py", "", "x\nalpha\nbeta\n^x$\n# c\n  # d\n\u03b1\u03b2\nkey 1\n"
    )
    exact = re2.compile(pattern, options())
    expected = [item for item in _reference(diff) if exact.search(item[2])]
    got = [item for item in _scanned(diff, [pattern]) if exact.search(item[2])]
    assert got == expected


@pytest.mark.parametrize(
    ("pattern", "rewritten"),
    [
        (r"^foo$", r"(?:)foo(?m:$)"),
        (r"\Afoo\z", r"(?:)foo(?m:$)"),
        (r"[^a$]b", r"[^a$]b"),  # inside a class nothing is an anchor
        (r"[]^]x", r"[]^]x"),
        (r"[[:alpha:]^]", r"[[:alpha:]^]"),
        (r"\^\$", r"\^\$"),
        (r"\Q^$\E$", r"\Q^$\E(?m:$)"),
        (r"\p{^Greek}", r"\p{^Greek}"),
        (r"\x{5E}^", r"\x{5E}(?:)"),
        (r"a\bb", r"a\bb"),
    ],
)
def test_raw_line_pattern_rewrites_only_real_anchors(pattern: str, rewritten: str) -> None:
    assert raw_line_pattern(pattern) == rewritten


def test_content_that_looks_like_headers_stays_content_in_a_plain_diff() -> None:
    diff = (
        "--- a/x.py\n"
        "+++ b/x.py\n"
        "@@ -1,4 +1,5 @@\n"
        " ctx\n"
        "--- removed, looks like a header\n"
        "+++ added, looks like a header\n"
        "+@@ -1 +1 @@ not a header\n"
        " ctx2\n"
        "-x\n"
        "+y\n"
        "\\ No newline at end of file\n"
        "--- a/y.py\n"
        "+++ b/y.py\n"
        "@@ -10,2 +10,3 @@ def f():\n"
        "\n"
        "+new after an empty context line\n"
        " last\n"
    )
    assert _scanned(diff, ["."]) == [
        ("x.py", 2, "++ added, looks like a header"),
        ("x.py", 3, "@@ -1 +1 @@ not a header"),
        ("x.py", 5, "y"),
        ("y.py", 11, "new after an empty context line"),
    ]
    assert _scanned(diff, ["."]) == [i for i in _reference(diff) if i[2]]


def test_git_extended_headers_name_the_files() -> None:
    diff = (
        'diff --git "a/dir/caf\\303\\251 x.py" "b/dir/caf\\303\\251 x.py"\n'
        "new file mode 100644\n"
        "--- /dev/null\n"
        '+++ "b/dir/caf\\303\\251 x.py"\n'
        "@@ -0,0 +1 @@\n"
        "+hello\n"
        "diff --git a/old name.txt b/new name.txt\n"
        "similarity index 100%\n"
        "rename from old name.txt\n"
        "rename to new name.txt\n"
        "diff --git a/gone.py b/gone.py\n"
        "deleted file mode 100644\n"
        "--- a/gone.py\n"
        "+++ /dev/null\n"
        "@@ -1 +0,0 @@\n"
        "-bye\n"
        "diff --git a/logo.png b/logo.png\n"
        "index 0000000..1111111 100644\n"
        "Binary files a/logo.png and b/logo.png differ\n"
        "diff --git a/.env b/.env\n"
        "new file mode 100644\n"
        "index 0000000..e69de29\n"
    )
    result = scan(diff.encode(), Prefilter(["hello"]))
    assert result.files == (
        FileChange(source=None, target="dir/café x.py"),
        FileChange(source="old name.txt", target="new name.txt"),
        FileChange(source="gone.py", target=None),
        FileChange(source="logo.png", target="logo.png"),
        FileChange(source=None, target=".env"),
    )
    assert [(line.file, line.line, line.text) for line in result.lines] == [
        ("dir/café x.py", 1, b"hello")
    ]


def test_crlf_lines_keep_their_carriage_return_like_parse_diff() -> None:
    diff = make_diff("a.txt", "one\r\n", "one\r\ntwo\r\n")
    assert _scanned(diff, ["two"]) == [("a.txt", 2, "two\r")] == _reference(diff)


def test_matches_never_cross_a_line() -> None:
    diff = make_diff("a.py", "", "a\nab\n")
    # Were "a" on line 1 allowed to run on into line 2, that match would swallow line 2's.
    assert [i for i in _scanned(diff, ["a[^x]*b"]) if "b" in i[2]] == [("a.py", 2, "ab")]


@pytest.mark.parametrize(
    "diff",
    [
        # a "no newline" note inside a hunk counts for neither side
        "--- a/x\n+++ b/x\n@@ -1 +1,2 @@\n-a\n\\ No newline at end of file\n+a\n+b\n",
        # a line past the end of its hunk is not an added line (unidiff skips it too)
        "--- a/x\n+++ b/x\n@@ -1,2 +1 @@\n-a\n+c\n-b\n+AKIA\n",
    ],
    ids=["no-newline-note", "past-the-hunk"],
)
def test_hunk_counts_decide_what_is_added(diff: str) -> None:
    assert _scanned(diff, ["."]) == _reference(diff)
