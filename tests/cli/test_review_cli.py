"""The reviewer's loop in the CLI (local mode): line comments, bulk decisions, revisions
and the interdiff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import diff_text, ok_json, one_error_line, storykit

from storykit.filters import KEYS
from storykit_cli.commands import decide

pytestmark = pytest.mark.usefixtures("local_env")


def generate() -> list[str]:
    return [s["id"] for s in ok_json("suggest", "generate")["items"]]


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("a.py:2=say why", {"file": "a.py", "line": 2, "side": "new", "body": "say why"}),
        (
            "src/x y.py:7:old=keep = this",
            {"file": "src/x y.py", "line": 7, "side": "old", "body": "keep = this"},
        ),
        ("keep the public name", None),  # an overall comment
        ("see a.py:2 for why", None),
        ("a.py:2=", None),
        ("a.py:two=x", None),
    ],
)
def test_a_comment_option_is_a_line_comment_only_in_its_form(
    value: str, parsed: dict[str, object] | None
) -> None:
    assert decide.line_comment(value) == parsed


def test_the_filter_keys_are_the_cores() -> None:
    assert decide._FILTER_KEYS == KEYS


def test_line_comments_are_given_and_shown(tmp_path: Path) -> None:
    first, second = generate()
    asked = ok_json(
        "suggest", "review", first, "--revise", "-m", "a.py:2=why a comment?", "-m", "tidy up"
    )
    [review] = asked["reviews"]
    assert review["comment"] == "tidy up"
    assert review["comments"] == [
        {
            "file": "a.py",
            "line": 2,
            "side": "new",
            "body": "why a comment?",
            "outdated": False,
            "current_line": 2,
        }
    ]
    shown = storykit("suggest", "show", first, "--no-diff").stdout
    assert "a.py:2 (new)  why a comment?" in shown

    notes = tmp_path / "notes.json"
    notes.write_text(json.dumps([{"file": "b.py", "line": 1, "side": "old", "body": "was fine"}]))
    done = ok_json("suggest", "review", second, "--revise", "--comments", str(notes))
    assert done["reviews"][0]["comments"][0]["side"] == "old"

    line = one_error_line(storykit("suggest", "review", second, "--approve", "-m", "b.py:9=x"), 1)
    assert "line 9 of b.py is not in the diff on the new side" in line
    two = storykit("suggest", "review", second, "--approve", "-m", "one", "-m", "two")
    assert two.exit_code == 2 and "one overall comment" in two.stderr


def test_approve_several_reports_each_and_exits_1_if_any_was_refused() -> None:
    first, second = generate()
    missing = "sug_01M87HY64GX50BG88SFS5HKAQR"
    result = storykit("suggest", "approve", first, missing, "-m", "batch")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{first}  approved"
    assert lines[1].startswith(f"{missing}  refused: no suggestion")
    assert lines[-1] == "approved 1, refused 1"
    by_filter = ok_json("suggest", "reject", "--filter", "status=pending", "-m", "no")
    assert [(i["id"], i["status"]) for i in by_filter["items"]] == [(second, "rejected")]
    usage = storykit("suggest", "approve")
    assert usage.exit_code == 2 and "IDs or --filter" in usage.stderr
    bad = storykit("suggest", "approve", "--filter", "colour=red")
    assert bad.exit_code == 2 and "KEY one of status, source, agent, risk" in bad.stderr


def test_revisions_and_what_changed_between_them() -> None:
    mine = ok_json("suggest", "submit", "-", "-t", "Mine", input=diff_text())
    ok_json("suggest", "revise", mine["id"], "-", input=diff_text(added="a = 2"))
    listed = storykit("suggest", "revisions", mine["id"])
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["REV", "1", "2"]
    one = ok_json("suggest", "revisions", mine["id"], "1")
    assert one["diff"] == diff_text()
    changes = storykit("suggest", "interdiff", mine["id"])
    assert changes.exit_code == 0
    assert "changes from revision 1 to 2" in changes.stdout
    assert "-a = 1  # checked\n+a = 2\n" in changes.stdout
    same = storykit("suggest", "interdiff", mine["id"], "--from", "2", "--to", "2")
    assert "no change" in same.stdout
