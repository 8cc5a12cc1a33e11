"""Line comments as tables: their shape, their anchor in the reviewed diff, and how they
carry over to a new revision (storykit.comments)."""

from __future__ import annotations

from typing import Any

import pytest

from storykit import comments
from storykit.errors import Invalid
from storykit.models import Action, LineComment, Review, Side
from storykit.testing import make_diff

BASE = "".join(f"line {n}\n" for n in range(1, 41))
ONE = BASE.replace("line 10\n", "ten\n")
DIFF = make_diff("m.py", BASE, ONE)  # shows old and new lines 7-13


def test_a_comment_reads_its_shape() -> None:
    [c] = comments.parse([{"file": "m.py", "line": 10, "body": "why?"}])
    assert c == LineComment(file="m.py", line=10, side=Side.NEW, body="why?", current_line=10)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("m.py:10", "must be a list"),
        ([5], "comment 1 must be an object"),
        ([{"file": "m.py", "line": 0, "body": "x"}], "line must be a line number"),
        ([{"file": "m.py", "line": True, "body": "x"}], "line must be a line number"),
        ([{"file": "m.py", "line": 3, "side": "left", "body": "x"}], "side must be 'old' or 'new'"),
        ([{"file": "m.py", "line": 3, "body": "  "}], "body is required"),
        ([{"file": "", "line": 3, "body": "x"}], "file is required"),
        ([{"file": "m.py", "line": 3, "body": "x", "colour": "red"}], "unknown key"),
        ([{"file": "m.py", "line": 3, "body": "x"}] * 201, "at most 200"),
    ],
)
def test_bad_shapes_are_refused_saying_which(raw: object, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        comments.parse(raw)


ANCHORS: list[tuple[dict[str, Any], str | None]] = [
    ({"file": "m.py", "line": 10, "side": "new"}, None),  # the added line
    ({"file": "m.py", "line": 10, "side": "old"}, None),  # the removed line
    ({"file": "m.py", "line": 7, "side": "new"}, None),  # context
    ({"file": "m.py", "line": 13, "side": "old"}, None),
    ({"file": "m.py", "line": 20, "side": "new"}, "shows lines 7-13"),  # not in the diff
    ({"file": "m.py", "line": 6, "side": "old"}, "not in the diff on the old side"),
    ({"file": "other.py", "line": 1, "side": "new"}, "does not change 'other.py'"),
]


@pytest.mark.parametrize(("where", "refused"), ANCHORS)
def test_a_comment_must_be_on_a_line_the_diff_shows(
    where: dict[str, Any], refused: str | None
) -> None:
    parsed = comments.parse([where | {"body": "look"}])
    if refused is None:
        comments.anchor(parsed, DIFF)
    else:
        with pytest.raises(Invalid, match=refused):
            comments.anchor(parsed, DIFF)


def review(*notes: LineComment) -> Review:
    return Review(reviewer="alice", action=Action.REVISE, diff_hash="h", revision=1, comments=notes)


def note(line: int, side: Side = Side.NEW) -> LineComment:
    return LineComment(file="m.py", line=line, side=side, body="b", current_line=line)


CARRIED = [
    # the comment, revision 2's file, (outdated, current_line) after it
    (note(10), BASE.replace("line 10\n", "TEN\n"), (True, None)),  # its line changed
    (note(12), BASE.replace("line 10\n", "ten\n").replace("line 3\n", "3\n3b\n"), (False, 13)),
    (note(10, Side.OLD), BASE.replace("line 10\n", "ten\n"), (False, 10)),  # same change
    (note(10, Side.OLD), BASE, (True, None)),  # the change was dropped
]


@pytest.mark.parametrize(("comment", "two", "after"), CARRIED)
def test_a_new_revision_moves_or_outdates_each_comment(
    comment: LineComment, two: str, after: tuple[bool, int | None]
) -> None:
    [carried] = comments.carry([review(comment)], DIFF, make_diff("m.py", BASE, two))
    [c] = carried.comments
    assert (c.outdated, c.current_line) == after
    assert (c.line, c.body) == (comment.line, comment.body)  # what was said stays as said


def test_an_outdated_comment_stays_outdated_and_reviews_without_comments_pass_through() -> None:
    gone = LineComment(file="m.py", line=10, body="b", outdated=True)
    plain = Review(reviewer="bob", action=Action.APPROVE, diff_hash="h")
    given = (review(gone), plain)
    assert comments.carry(given, DIFF, make_diff("m.py", BASE, ONE)) == given
