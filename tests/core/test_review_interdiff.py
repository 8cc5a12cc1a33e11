"""The interdiff and line mapping as tables: two revisions' diffs against one base, compared
by the files they produce (storykit.interdiff). Every case is checked against difflib run
on the real files, which the function never sees."""

from __future__ import annotations

import difflib

import pytest

from storykit.errors import Invalid
from storykit.interdiff import interdiff, map_line
from storykit.models import Side
from storykit.testing import make_diff

BASE = "".join(f"line {n}\n" for n in range(1, 61))


def edit(text: str, *replacements: tuple[int, str | None]) -> str:
    """``text`` with line n (from 1) replaced by the given lines (None: removed)."""
    lines = text.splitlines(keepends=True)
    for n, new in sorted(replacements, reverse=True):
        lines[n - 1 : n] = [] if new is None else [x + "\n" for x in new.split("\n")]
    return "".join(lines)


def changed(a: str, b: str) -> tuple[list[str], list[str]]:
    """The removed and added lines from file ``a`` to file ``b`` (what an interdiff must say)."""
    removed: list[str] = []
    added: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
        None, a.splitlines(), b.splitlines(), autojunk=False
    ).get_opcodes():
        if tag != "equal":
            removed += a.splitlines()[i1:i2]
            added += b.splitlines()[j1:j2]
    return removed, added


def said(diff: str) -> tuple[list[str], list[str]]:
    body = [x for x in diff.splitlines() if not x.startswith(("---", "+++", "diff --git"))]
    return [x[1:] for x in body if x.startswith("-")], [x[1:] for x in body if x.startswith("+")]


REVISIONS = [
    # name, file after revision 1, file after revision 2
    ("same change", edit(BASE, (5, "five")), edit(BASE, (5, "five"))),
    ("one line changed again", edit(BASE, (5, "five")), edit(BASE, (5, "FIVE"))),
    ("a hunk added far away", edit(BASE, (5, "five")), edit(BASE, (5, "five"), (50, "fifty"))),
    ("a hunk dropped", edit(BASE, (5, "five"), (50, "fifty")), edit(BASE, (50, "fifty"))),
    ("insert vs remove", edit(BASE, (20, "line 20\nnew")), edit(BASE, (20, None))),
    ("moved edit", edit(BASE, (10, "ten")), edit(BASE, (12, "twelve"))),
    ("back to the base", edit(BASE, (30, "thirty")), BASE),
    ("growing block", edit(BASE, (7, "a\nb")), edit(BASE, (7, "a\nb\nc\nd"), (8, None))),
]


@pytest.mark.parametrize(("name", "one", "two"), REVISIONS, ids=[r[0] for r in REVISIONS])
def test_the_interdiff_is_the_change_between_the_files(name: str, one: str, two: str) -> None:
    d1, d2 = make_diff("src/m.py", BASE, one), make_diff("src/m.py", BASE, two)
    result = interdiff(d1, d2)
    assert said(result.diff) == changed(one, two)
    assert result.files == (("src/m.py",) if one != two else ())
    if result.diff:  # it is a diff that turns the first file into the second
        from storykit.combine import file_patches

        [patch] = file_patches(result.diff)
        lines = one.splitlines(keepends=True)
        for change in reversed(patch.changes):
            assert lines[change.start : change.end] == list(change.removed)
            lines[change.start : change.end] = list(change.added)
        assert "".join(lines) == two


def test_files_only_one_revision_touches_and_new_files() -> None:
    one = make_diff("a.py", "x\n", "y\n") + make_diff("new.py", "", "hello\n")
    two = make_diff("a.py", "x\n", "y\n") + make_diff("b.py", "p\n", "q\n")
    result = interdiff(one, two)
    assert result.files == ("new.py", "b.py")
    assert said(result.diff) == (["hello", "p"], ["q"])


def test_revisions_against_different_bases_are_refused() -> None:
    with pytest.raises(Invalid, match="different versions"):
        interdiff(make_diff("a.py", "x\n", "y\n"), make_diff("a.py", "z\n", "y\n"))


LINES = [
    # side, line in revision 1, where it is in revision 2 (None: changed)
    (Side.NEW, 4, 4),  # above every change
    (Side.NEW, 5, None),  # the line revision 2 changed again
    (Side.NEW, 21, 22),  # below the line revision 2 added
    (Side.NEW, 40, 41),  # a line neither diff shows
    (Side.OLD, 5, None),  # revision 1 replaced it one way, revision 2 another
    (Side.OLD, 30, 30),  # both replace it alike
    (Side.OLD, 4, 4),  # kept by both
]


@pytest.mark.parametrize(("side", "line", "now"), LINES)
def test_where_a_line_of_one_revision_is_in_the_next(
    side: Side, line: int, now: int | None
) -> None:
    one = edit(BASE, (5, "five"), (30, "thirty"))
    two = edit(BASE, (5, "FIVE"), (20, "line 20\nnew"), (30, "thirty"))
    d1, d2 = make_diff("m.py", BASE, one), make_diff("m.py", BASE, two)
    assert map_line(d1, d2, file="m.py", side=side, line=line) == now
    if side is Side.NEW and now is not None:
        assert one.splitlines()[line - 1] == two.splitlines()[now - 1]
