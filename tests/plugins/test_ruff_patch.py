"""The ``ruff`` policy's fast path (:mod:`storykit_plugins.ruff.patch`): where it says a
diff applies, git applies it too, to the same result. Random cases against real git."""

from __future__ import annotations

import os
import random
import re
import subprocess
from pathlib import Path

import pytest

from storykit.diffs import parse_diff
from storykit.gitdiff import blob_id
from storykit.testing import make_diff
from storykit_plugins._git import TreeEntry
from storykit_plugins.ruff.patch import apply_exactly

WORDS = ["a", "b", "c", "x = 1", "", "    pass", "def f():", "é"]


def _text(rng: random.Random) -> str:
    text = "".join(rng.choice(WORDS) + "\n" for _ in range(rng.randrange(0, 14)))
    return text[:-1] if text and rng.random() < 0.15 else text  # no newline at the end


def _edit(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(0, len(lines) + 1)
        if rng.random() < 0.5 and at < len(lines):
            del lines[at]
        else:
            lines.insert(at, rng.choice(WORDS) + "!")
    return "\n".join(lines)


def _spoil(rng: random.Random, diff: str) -> str:
    """Move a hunk's header by a line, or change the base behind the diff's back."""
    headers = list(re.finditer(r"^@@ -(\d+)", diff, re.MULTILINE))
    if not headers:
        return diff
    m = rng.choice(headers)
    moved = max(0, int(m.group(1)) + rng.choice((-1, 1)))
    return diff[: m.start(1)] + str(moved) + diff[m.end(1) :]


def _git_apply(work: Path, files: dict[str, str], diff: str) -> dict[str, str | None] | None:
    """What plain ``git apply`` makes of ``files``, or None when it refuses."""
    work.mkdir()
    for name, text in files.items():
        (work / name).write_bytes(text.encode())
    (work / "change.patch").write_bytes(diff.encode())
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(work.parent)}
    done = subprocess.run(
        ["git", "apply", "--whitespace=nowarn", "change.patch"],
        cwd=work,
        env=env,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    return {
        name: (work / name).read_bytes().decode() if (work / name).exists() else None
        for name in ("f.py", "g.py")
    }


def test_where_the_fast_path_says_it_applies_git_agrees(tmp_path: Path) -> None:
    rng = random.Random(20250101)
    answered = refused_by_git = 0
    for case in range(160):
        base = _text(rng)
        files = {"f.py": base} if base or rng.random() < 0.5 else {}
        kind = rng.random()
        if kind < 0.15:
            diff = make_diff("g.py", "", _text(rng) or "x\n")  # a new file
        elif kind < 0.25 and base:
            diff = make_diff("f.py", base, "")  # a deletion
        else:
            new = _edit(rng, base)
            if new == base:
                continue
            diff = make_diff("f.py", base, new)
            if rng.random() < 0.3:
                diff = _spoil(rng, diff)
        if rng.random() < 0.15 and base:
            files["f.py"] = _edit(rng, base)  # the base moved on
        try:
            parsed = parse_diff(diff)
        except Exception:
            continue
        tree = {
            name: TreeEntry(mode="100644", oid=blob_id(text.encode()), path=name)
            for name, text in files.items()
        }
        blobs = {blob_id(text.encode()): text.encode() for text in files.values()}
        ours = apply_exactly(diff, parsed, tree, blobs)
        theirs = _git_apply(tmp_path / f"case{case}", files, diff)
        if theirs is None:
            refused_by_git += 1
        if ours is not None:
            answered += 1
            assert theirs is not None, (case, files, diff)
            for name, text in ours.items():
                assert theirs[name] == text, (case, files, diff)
    assert answered > 60 and refused_by_git > 10  # both sides of the question were asked


@pytest.mark.parametrize(
    ("files", "diff", "why"),
    [
        ({"f.py": "a\n"}, make_diff("f.py", "b\n", "c\n"), "old lines differ"),
        ({"f.py": "a\n"}, make_diff("f.py", "", "a\n"), "a new file that exists"),
        ({"f": "a\n"}, make_diff("f/g.py", "", "a\n"), "a new file under a file"),
        ({"f.py/g": "a\n"}, make_diff("f.py", "", "a\n"), "a new file over a folder"),
        ({"f.py": "a\nb\n"}, make_diff("f.py", "a\n", ""), "a deletion that leaves lines"),
        ({"f.py": "a\r\n"}, make_diff("f.py", "a\r\n", "b\r\n"), "carriage returns"),
        (
            {"f.py": "a\n"},
            "diff --git a/f.py b/f.py\nold mode 100644\nnew mode 100755\n",
            "a mode change",
        ),
        (
            {"f.py": "a\n"},
            "diff --git a/f.py b/g.py\nsimilarity index 90%\nrename from f.py\nrename to g.py\n"
            "--- a/f.py\n+++ b/g.py\n@@ -1 +1 @@\n-a\n+b\n",
            "a rename",
        ),
        (
            {"f.py": "a\nb\nc\nd\ne\n"},
            "--- a/f.py\n+++ b/f.py\n@@ -2,1 +2,1 @@\n-c\n+C\n",
            "offset",
        ),
        (
            {"f.py": "a\nb\n"},
            "--- a/f.py\n+++ b/f.py\n@@ -1 +1 @@\n-a\n+A\n",
            "no trailing context, not at the end",
        ),
    ],
)
def test_git_decides(files: dict[str, str], diff: str, why: str) -> None:
    tree = {n: TreeEntry(mode="100644", oid=blob_id(t.encode()), path=n) for n, t in files.items()}
    blobs = {blob_id(t.encode()): t.encode() for t in files.values()}
    try:
        parsed = parse_diff(diff)
    except Exception:
        pytest.skip("storykit refuses this diff before any policy sees it")
    assert apply_exactly(diff, parsed, tree, blobs) is None, why


def test_plain_edits_need_no_git() -> None:
    base = "".join(f"line {n}\n" for n in range(1, 21))
    new = base.replace("line 3\n", "line three\n").replace("line 18\n", "")
    tree = {"f.py": TreeEntry(mode="100644", oid="1" * 40, path="f.py")}
    diff = make_diff("f.py", base, new) + make_diff("new.py", "", "x = 1\n")
    assert apply_exactly(diff, parse_diff(diff), tree, {"1" * 40: base.encode()}) == {
        "f.py": new,
        "new.py": "x = 1\n",
    }
