"""The ``default`` planner and the core's diff combining behind its variants, checked with
``git apply``. The planner only groups and orders; ``_planned`` derives the diffs as the core
does when it stores a plan."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

import storykit_plugins.planner as planner_module
from storykit.combine import combine, derive_variant, file_patches, variant_risk
from storykit.diffs import diff_hash, parse_diff
from storykit.errors import Invalid
from storykit.models import Action, Review, Risk, Status, Suggestion, Variant
from storykit.plugins import Registry, get_plugin_manager
from storykit.settings import Settings
from storykit_plugins.planner import DefaultPlanner, group_of

anyio = pytest.mark.anyio
BASE = {
    "pkg/core.py": "".join(f"core {n}\n" for n in range(1, 31)),
    "pkg/util.py": "def util():\n    return 1\n",
    "docs/conf.py": "project = 'x'\nversion = '1'\n",
    "setup.py": "from setuptools import setup\nsetup()\n",
}
Git = Callable[..., str]


def _suggestion(sid: str, diff: str, risk: Risk = Risk.LOW) -> Suggestion:
    digest = diff_hash(diff)
    return Suggestion(
        id=sid,
        source="test",
        agent="agent",
        title=f"suggestion {sid}",
        diff=diff,
        diff_hash=digest,
        files=parse_diff(diff).files,
        risk=risk,
        status=Status.APPROVED,
        reviews=(Review(reviewer="alice", action=Action.APPROVE, diff_hash=digest),),
    )


@pytest.fixture
def repo_diff(
    repo_make: Callable[..., Path], git_cmd: Git
) -> tuple[Path, Callable[[Mapping[str, str | None]], str]]:
    """A clean repository with ``BASE`` and ``diff_of(changes)``: the ``git diff`` that makes
    those changes (``None`` deletes a file), leaving the repository clean again."""
    repo = repo_make(BASE)

    def diff_of(changes: Mapping[str, str | None]) -> str:
        for name, content in changes.items():
            path = repo / name
            if content is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content, encoding="utf-8", newline="")
        git_cmd(repo, "add", "-A")
        diff = git_cmd(repo, "diff", "--cached", "-M", "HEAD")
        git_cmd(repo, "reset", "-q", "--hard", "HEAD")
        return diff

    return repo, diff_of


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _with(name: str, **changes: str) -> str:
    """BASE[name] with lines replaced: ``_with("pkg/core.py", l5="new\n")``."""
    lines = _lines(BASE[name])
    for key, value in changes.items():
        lines[int(key[1:]) - 1] = value
    return "".join(lines)


def _applied(repo: Path, diff: str, git_cmd: Git) -> dict[str, str]:
    """The files after ``git apply`` of ``diff`` on a clean HEAD (then reset again)."""
    git_cmd(repo, "apply", "--check", "-", input=diff.encode())
    git_cmd(repo, "apply", "-", input=diff.encode())
    out = {p.relative_to(repo).as_posix(): p.read_text() for p in repo.rglob("*.py")}
    git_cmd(repo, "reset", "-q", "--hard", "HEAD")
    git_cmd(repo, "clean", "-q", "-fd")
    return out


async def _planned(suggestions: list[Suggestion]) -> list[Variant]:
    """The default planner's variants as the core stores them: diffs derived by the core."""
    grouped = await DefaultPlanner().plan("g", suggestions)
    assert all(v.diff == "" and v.conflicts == () for v in grouped)  # it authors no content
    return [derive_variant(v, suggestions) for v in grouped]


def _variants(variants: list[Variant]) -> dict[str, Variant]:
    return {v.key: v for v in variants}


def test_registered_as_default_planner(tmp_path: Path) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(planner_module, name="planner")
    registry = Registry(pm, Settings.from_env({}, data_dir=tmp_path))
    assert isinstance(registry.planners["default"].backend, DefaultPlanner)


@anyio
async def test_variants_by_directory_and_risk(
    repo_diff: tuple[Path, Callable[[Mapping[str, str | None]], str]], git_cmd: Git
) -> None:
    repo, diff_of = repo_diff
    core_a = _suggestion("s1", diff_of({"pkg/core.py": _with("pkg/core.py", l2="two\n")}))
    core_b = _suggestion(
        "s2", diff_of({"pkg/core.py": _with("pkg/core.py", l7="seven\n")}), Risk.MEDIUM
    )
    docs = _suggestion("s3", diff_of({"docs/conf.py": "project = 'y'\nversion = '1'\n"}))
    root = _suggestion("s4", diff_of({"setup.py": "from setuptools import setup\n\nsetup()\n"}))
    both = _suggestion(
        "s5",
        diff_of({"pkg/util.py": "def util():\n    return 2\n", "docs/conf.py": "project = 'x'\n"}),
        Risk.UNKNOWN,
    )
    variants = _variants(await _planned([core_a, core_b, docs, root, both]))

    assert list(variants) == ["all", "dir:(root)", "dir:docs", "dir:pkg", "low-risk"]
    everything = variants["all"]
    # s5 touches docs/conf.py next to s3's change: s3 came first, so s5 is left out.
    assert everything.suggestion_ids == ("s1", "s2", "s3", "s4")
    assert [c.suggestion_ids for c in everything.conflicts] == [("s3", "s5")]
    assert everything.conflicts[0].file == "docs/conf.py"
    assert everything.risk is Risk.MEDIUM
    files = _applied(repo, everything.diff, git_cmd)
    assert files["pkg/core.py"] == _with("pkg/core.py", l2="two\n", l7="seven\n")
    assert files["docs/conf.py"] == "project = 'y'\nversion = '1'\n"
    assert files["setup.py"] == "from setuptools import setup\n\nsetup()\n"
    # One merged patch for the file two suggestions share.
    assert everything.diff.count("diff --git a/pkg/core.py b/pkg/core.py") == 1

    assert variants["dir:pkg"].suggestion_ids == ("s1", "s2")
    assert variants["dir:docs"].suggestion_ids == ("s3",)
    assert variants["dir:(root)"].suggestion_ids == ("s4",)
    assert variants["low-risk"].suggestion_ids == ("s1", "s3", "s4")
    assert variants["low-risk"].risk is Risk.LOW
    for variant in variants.values():
        _applied(repo, variant.diff, git_cmd)  # every variant applies to HEAD


@anyio
async def test_overlapping_and_adjacent_changes_conflict(
    repo_diff: tuple[Path, Callable[[Mapping[str, str | None]], str]], git_cmd: Git
) -> None:
    repo, diff_of = repo_diff
    first = _suggestion("first", diff_of({"pkg/core.py": _with("pkg/core.py", l10="ten\n")}))
    same = _suggestion("same", diff_of({"pkg/core.py": _with("pkg/core.py", l10="TEN\n")}))
    adjacent = _suggestion("next", diff_of({"pkg/core.py": _with("pkg/core.py", l11="11\n")}))
    apart = _suggestion("apart", diff_of({"pkg/core.py": _with("pkg/core.py", l12="12\n")}))
    [variant] = await _planned([first, same, adjacent, apart])
    assert variant.suggestion_ids == ("first", "apart")
    assert [c.suggestion_ids for c in variant.conflicts] == [("first", "same"), ("first", "next")]
    assert "line 10" in variant.conflicts[0].detail
    assert "left out same" in variant.conflicts[0].detail
    files = _applied(repo, variant.diff, git_cmd)
    assert files["pkg/core.py"] == _with("pkg/core.py", l10="ten\n", l12="12\n")


@anyio
async def test_insertions_at_the_same_place_conflict(
    repo_diff: tuple[Path, Callable[[Mapping[str, str | None]], str]],
) -> None:
    _, diff_of = repo_diff
    a = _suggestion("a", diff_of({"pkg/util.py": "# a\ndef util():\n    return 1\n"}))
    b = _suggestion("b", diff_of({"pkg/util.py": "# b\ndef util():\n    return 1\n"}))
    [variant] = await _planned([a, b])
    assert variant.suggestion_ids == ("a",)
    assert variant.conflicts[0].suggestion_ids == ("a", "b")


@anyio
async def test_renames_and_new_files_are_never_merged(
    repo_diff: tuple[Path, Callable[[Mapping[str, str | None]], str]], git_cmd: Git
) -> None:
    repo, diff_of = repo_diff
    rename = _suggestion(
        "rename", diff_of({"pkg/util.py": None, "pkg/helpers.py": BASE["pkg/util.py"]})
    )
    edit = _suggestion("edit", diff_of({"pkg/util.py": "def util():\n    return 5\n"}))
    new = _suggestion("new", diff_of({"pkg/new.py": "x = 1\n"}))
    assert "rename from pkg/util.py" in rename.diff
    [variant] = await _planned([rename, edit, new])
    assert variant.suggestion_ids == ("rename", "new")
    assert variant.conflicts[0].suggestion_ids == ("rename", "edit")
    assert "renames" in variant.conflicts[0].detail
    files = _applied(repo, variant.diff, git_cmd)
    assert "pkg/util.py" not in files
    assert files["pkg/helpers.py"] == BASE["pkg/util.py"]
    assert files["pkg/new.py"] == "x = 1\n"


def test_a_single_suggestions_patch_is_kept_byte_for_byte() -> None:
    diff = (
        "diff --git a/a.py b/a.py\n"
        "index 1111111..2222222 100644\n"
        "--- a/a.py\n"
        "+++ b/a.py\n"
        "@@ -1,2 +1,2 @@\n"
        "-x = 1\n"
        "+x = 2\n"
        " y = 1\n"
    )
    other = "diff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n@@ -1 +1 @@\n-b\n+B\n"
    combined = combine([("a", file_patches(diff)), ("b", file_patches(other))])
    assert combined.diff == diff + other


def test_suggestions_made_against_different_versions_conflict() -> None:
    one = "--- a/f.py\n+++ b/f.py\n@@ -1,3 +1,3 @@\n-a\n+A\n b\n c\n"
    two = "--- a/f.py\n+++ b/f.py\n@@ -3,3 +3,3 @@\n C\n d\n-e\n+E\n"
    combined = combine([("one", file_patches(one)), ("two", file_patches(two))])
    assert combined.included == ("one",)
    assert "different versions" in combined.conflicts[0].detail


@anyio
async def test_files_without_a_final_newline_merge(
    repo_make: Callable[..., Path], git_cmd: Git
) -> None:
    text = "".join(f"{n}\n" for n in range(1, 10)) + "last"
    repo = repo_make({"f.py": text})
    top = (
        "diff --git a/f.py b/f.py\n--- a/f.py\n+++ b/f.py\n@@ -1,4 +1,4 @@\n-1\n+one\n 2\n 3\n 4\n"
    )
    end = (
        "diff --git a/f.py b/f.py\n--- a/f.py\n+++ b/f.py\n@@ -7,4 +7,4 @@\n 7\n 8\n 9\n-last\n"
        "\\ No newline at end of file\n+LAST\n\\ No newline at end of file\n"
    )
    [variant] = await _planned([_suggestion("t", top), _suggestion("e", end)])
    assert variant.conflicts == ()
    assert variant.diff.count("diff --git") == 1
    git_cmd(repo, "apply", "-", input=variant.diff.encode())
    assert (repo / "f.py").read_text() == text.replace("1\n", "one\n", 1).replace("last", "LAST")


@anyio
async def test_random_non_touching_changes_always_combine(
    repo_make: Callable[..., Path], git_cmd: Git
) -> None:
    rng = random.Random(7)
    original = [f"line {n}\n" for n in range(40)]
    repo = repo_make({"f.py": "".join(original)})
    for _round in range(12):
        # Pick line positions at least two apart, so no two suggestions touch.
        spots = sorted(rng.sample(range(0, 40, 3), 9))
        owners = [spots[i::3] for i in range(3)]
        result = list(original)
        suggestions = []
        for n, mine in enumerate(owners):
            lines = list(original)
            for spot in sorted(mine, reverse=True):
                kind = rng.choice(["edit", "delete", "insert"])
                if kind == "edit":
                    lines[spot] = result[spot] = f"edited {spot}\n"
                elif kind == "delete":
                    lines[spot] = result[spot] = ""
                else:
                    lines[spot] = result[spot] = f"inserted {spot}\n{original[spot]}"
            (repo / "f.py").write_text("".join(lines))
            diff = git_cmd(repo, "diff")
            git_cmd(repo, "checkout", "--", "f.py")
            suggestions.append(_suggestion(f"s{n}", diff))
        [variant] = await _planned(suggestions)
        assert variant.conflicts == ()
        git_cmd(repo, "apply", "-", input=variant.diff.encode())
        assert (repo / "f.py").read_text() == "".join(result)
        git_cmd(repo, "checkout", "--", "f.py")


@anyio
async def test_variants_identical_to_all_are_left_out(
    repo_diff: tuple[Path, Callable[[Mapping[str, str | None]], str]],
) -> None:
    _, diff_of = repo_diff
    a = _suggestion("a", diff_of({"pkg/util.py": "def util():\n    return 2\n"}))
    b = _suggestion("b", diff_of({"pkg/core.py": _with("pkg/core.py", l1="one\n")}))
    both = await _planned([a, b])
    assert [(v.key, v.title) for v in both] == [("all", "All 2 suggestions in one branch")]
    risky = _suggestion("c", b.diff, Risk.HIGH)
    variants = await _planned([risky])
    assert [v.key for v in variants] == ["all"]  # no low-risk suggestion: no low-risk variant
    assert variants[0].title == "1 suggestion in one branch"  # not "All 1 suggestions"
    assert variants[0].risk is Risk.HIGH
    assert await _planned([]) == []


@anyio
async def test_a_broken_diff_names_the_suggestion() -> None:
    broken = Suggestion(
        id="bad", source="t", agent="a", title="t", diff="nope", diff_hash="x", files=()
    )
    with pytest.raises(Invalid, match="suggestion bad"):
        await _planned([broken])


def test_groups_and_risk_order() -> None:
    assert group_of("setup.py") == "(root)"
    assert group_of("pkg/a/b.py") == "pkg"
    assert group_of("src/storykit/x.py") == "src/storykit"
    assert group_of("src/x.py") == "src"
    assert variant_risk([Risk.LOW, Risk.MEDIUM]) is Risk.MEDIUM
    assert variant_risk([Risk.LOW, Risk.UNKNOWN]) is Risk.UNKNOWN
    assert variant_risk([Risk.UNKNOWN, Risk.HIGH]) is Risk.HIGH
    assert variant_risk([]) is Risk.UNKNOWN


def test_git_accepts_the_combined_diff_of_many_files(
    repo_make: Callable[..., Path], git_cmd: Git
) -> None:
    files = {f"m{n}/f.py": "a\nb\nc\n" for n in range(5)}
    repo = repo_make(files)
    items = []
    for n in range(5):
        diff = f"--- a/m{n}/f.py\n+++ b/m{n}/f.py\n@@ -1,3 +1,3 @@\n a\n-b\n+B{n}\n c\n"
        items.append((f"s{n}", file_patches(diff)))
    combined = combine(items)
    assert combined.included == tuple(f"s{n}" for n in range(5))
    done = subprocess.run(
        ["git", "apply", "--check", "-"], cwd=repo, input=combined.diff.encode(), check=False
    )
    assert done.returncode == 0
