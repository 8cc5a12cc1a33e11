"""Path globs: gitignore-like meaning, translated to RE2 (used by ``paths`` and rule ``files``)."""

from __future__ import annotations

import pytest

from storykit.errors import Invalid
from storykit_plugins.policies._glob import GlobSet


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        # no slash: a name at any depth
        ("*.py", "a.py", True),
        ("*.py", "src/pkg/a.py", True),
        ("*.py", "a.pyc", False),
        (".env", "deploy/.env", True),
        (".env", "deploy/.envrc", False),
        # a slash anchors at the root, and * stays inside one segment
        ("docs/*.md", "docs/a.md", True),
        ("docs/*.md", "vendor/docs/a.md", False),
        ("docs/*.md", "docs/sub/a.md", False),
        ("/setup.py", "setup.py", True),
        ("/setup.py", "pkg/setup.py", False),
        # ** as a whole segment: any number of directories, none included
        ("src/**", "src/a.py", True),
        ("src/**", "src/a/b/c.py", True),
        ("src/**", "src", False),
        ("src/**", "srcx/a.py", False),
        ("**/test_*.py", "test_a.py", True),
        ("**/test_*.py", "a/b/test_a.py", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/xb", False),
        ("**", "anything/at/all", True),
        # ** inside a segment is a plain *
        ("a**b", "axxb", True),
        ("a**b", "ax/xb", False),
        # a matching directory covers what is inside it
        ("secrets", "secrets/key.pem", True),
        ("secrets", "app/secrets/key.pem", True),
        ("secrets/", "secrets/key.pem", True),
        ("secrets/", "secrets", False),
        (".github/workflows", ".github/workflows/ci.yml", True),
        # ? and classes never match the separator
        ("?.txt", "a.txt", True),
        ("?.txt", "ab.txt", False),
        ("a?b", "a/b", False),
        ("[abc].txt", "b.txt", True),
        ("[abc].txt", "d.txt", False),
        ("[!abc].txt", "d.txt", True),
        ("[!abc].txt", "a.txt", False),
        ("[^abc].txt", "d.txt", True),
        ("a[!x]b", "a/b", False),
        ("[a-c]1", "b1", True),
        ("[]]", "]", True),
        # regex metacharacters are literal; [ without a closing ] is literal
        ("a+b.(c)", "a+b.(c)", True),
        ("a+b.(c)", "aab.(c)", False),
        ("ab[", "ab[", True),
        ("[*]", "*", True),
        ("[*]", "x", False),
        # case-sensitive, like git
        ("*.PY", "a.py", False),
    ],
)
def test_glob_meaning(glob: str, path: str, matches: bool) -> None:
    assert (GlobSet([glob]).first_match(path) == glob) is matches


def test_the_first_matching_glob_is_named() -> None:
    globs = GlobSet(["docs/**", "*.md", "*.py"])
    assert globs.first_match("docs/a.md") == "docs/**"
    assert globs.first_match("a.md") == "*.md"
    assert globs.first_match("a.txt") is None


def test_an_empty_set_matches_nothing() -> None:
    empty = GlobSet([])
    assert not empty
    assert empty.first_match("a") is None


@pytest.mark.parametrize(
    ("globs", "message"),
    [
        ([""], r"allow\[0\]: glob '' is empty"),
        (["ok", "/"], r"allow\[1\]: glob '/' is empty"),
        (["[z-a]"], r"allow\[0\]: glob '\[z-a\]' is not valid: .*z-a"),
        ([3], r"allow\[0\] must be a string"),
    ],
)
def test_bad_globs_are_named(globs: list[object], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        GlobSet(globs, where="allow")  # type: ignore[arg-type]
