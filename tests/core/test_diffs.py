"""Diff file names as git reads them: quoted, on every header line, in any case.

Each hostile diff is first shown to real git (``git apply --check -v`` in a throwaway
repository), so the test proves what git would take the header to mean, and then
to :func:`parse_diff`, which must refuse it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from storykit.diffs import git_unquote, parse_diff, safe_repo_path
from storykit.errors import Invalid
from storykit.testing import make_diff


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        input=None if stdin is None else stdin.encode(),
        capture_output=True,
        check=False,
    )
    return (done.stdout + done.stderr).decode()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    for name in ("ok.py", "x"):
        (root / name).write_text("a\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "init")
    return root


def modify(old: str, new: str | None = None) -> str:
    """A one-line change whose ``diff --git`` line names ``old``; ``---``/``+++`` as given."""
    return f"diff --git a/{old} b/{old}\n--- a/{old}\n+++ b/{new or old}\n@@ -1 +1 @@\n-a\n+b\n"


def rename(kind: str, source: str, target: str, header: str = "ok.py") -> str:
    return (
        f"diff --git a/{header} b/{header}\nsimilarity index 100%\n"
        f"{kind} from {source}\n{kind} to {target}\n"
    )


HOSTILE = [
    pytest.param(
        'diff --git "a/\\056\\056/\\056\\056/x" "b/\\056\\056/\\056\\056/x"\n'
        'new file mode 100644\n--- /dev/null\n+++ "b/\\056\\056/\\056\\056/x"\n@@ -0,0 +1 @@\n+x\n',
        "invalid path '../../x'",
        "leaves the repository",
        id="quoted-octal-dots",
    ),
    pytest.param(modify(".GIT/config"), ".GIT/config", ".git folder", id="dot-git-upper-case"),
    pytest.param(modify("sub/.git/config"), "sub/.git/config", ".git folder", id="nested-dot-git"),
    pytest.param(
        rename("rename", "ok.py", "../../x.py"),
        "invalid path '../../x.py'",
        "leaves",
        id="rename-to",
    ),
    pytest.param(rename("rename", "../../x.py", "ok.py"), "../../x.py", "leaves", id="rename-from"),
    pytest.param(
        rename("copy", "ok.py", ".git/hooks/post-checkout"),
        "invalid path '.git/hooks/post-checkout'",
        ".git folder",
        id="copy-to",
    ),
    pytest.param(
        "diff --git a/x b/x\n--- a/../../evil\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
        "../../evil",
        "leaves",
        id="minus-line",
    ),
    pytest.param(
        "diff --git a/.git/config b/.git/config\nold mode 100644\nnew mode 100755\n",
        "invalid path '.git/config'",
        ".git folder",
        id="header-only",
    ),
    pytest.param(
        rename("rename", "ok.py", "other.py"),
        "ok.py => other.py",  # git renames; unidiff (and every policy) would see ok.py alone
        "names another file, 'other.py'",
        id="rename-to-another-file",
    ),
    pytest.param(modify("x", "y"), None, "does not parse", id="plus-line"),  # unidiff checks +++
]


@pytest.mark.parametrize(("diff", "git_reads", "refusal"), HOSTILE)
def test_names_git_reads_as_escaping_or_other_files_are_refused(
    repo: Path, diff: str, git_reads: str | None, refusal: str
) -> None:
    if git_reads is not None:
        assert git_reads in git(repo, "apply", "--check", "-v", stdin=diff)
    with pytest.raises(Invalid, match=refusal):
        parse_diff(diff)


@pytest.mark.parametrize(
    "path",
    [
        "..\\x",
        "a\\..\\..\\x",
        "C:/Windows/x",
        "C:x",
        "\\\\server\\share\\x",
        "/etc/passwd",
        ".Git/config",
        ".git./config",
        ".git /config",
        "GIT~1/config",
        "x/.g\u200cit/config",  # HFS+ ignores the zero-width non-joiner
        "x/.. 2024-01-01 00:00:00",  # git cuts a plain diff's name before a timestamp
        "\ud800.py",
    ],
)
def test_windows_and_disguised_names_are_refused(path: str) -> None:
    with pytest.raises(Invalid):
        safe_repo_path(path)
    with pytest.raises(Invalid):
        parse_diff(make_diff(path, "a\n", "b\n"))


@pytest.mark.parametrize(
    "path", [".gitignore", ".github/workflows/ci.yml", "x.git/y", "..x/y", "docs/ünï cödé.md"]
)
def test_ordinary_names_are_kept(path: str) -> None:
    assert parse_diff(make_diff(path, "a\n", "b\n")).files == (path,)


def test_gits_own_quoted_and_renamed_names_parse_to_what_git_applies(repo: Path) -> None:
    names = ["docs/café ✓.md", "tab\there.txt", 'quote"d.txt', "back\\slash.txt"]
    (repo / "docs").mkdir()
    for name in names:
        (repo / name).write_text("a\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "names")
    for name in names:
        (repo / name).write_text("b\n")
    git(repo, "mv", "ok.py", "new name.py")
    diff = git(repo, "diff", "-M", "HEAD")
    assert '"b/docs/caf\\303\\251 \\342\\234\\223.md"' in diff  # git quotes them
    parsed = parse_diff(diff)
    assert sorted(parsed.files) == sorted([*names, "new name.py"])
    assert next(c for c in parsed.changes if c.source != c.target).source == "ok.py"
    assert {a.file for a in parsed.added_lines()} == set(names)
    git(repo, "stash", "-q")
    assert "error" not in git(repo, "apply", "--check", "-v", stdin=diff)


def test_git_unquote_is_strict() -> None:
    assert git_unquote('"a/caf\\303\\251"') == "a/café"
    assert git_unquote('"\\t\\"\\\\"') == '\t"\\'
    assert git_unquote("plain name") == "plain name"
    for broken in ('"\\q"', '"\\8"', '"a"b"', '"\\377"'):
        with pytest.raises(Invalid):
            git_unquote(broken)


def test_a_hunk_header_with_a_huge_number_is_invalid() -> None:
    diff = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1," + "9" * 5000 + " +1 @@\n-a\n+b\n"
    with pytest.raises(Invalid, match="does not parse"):
        parse_diff(diff)


def test_header_look_alikes_inside_hunks_are_content() -> None:
    diff = make_diff("x.py", "-- a/../../x\n", "rename to ../../y\n++ b/.git/config\n")
    assert parse_diff(diff).files == ("x.py",)
