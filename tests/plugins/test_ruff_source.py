"""The ``ruff`` suggestion source and the diff writer it uses, on real git repositories.

The ``ruff`` policy has tests of its own (test_ruff_policy.py), and so has the pure
turning of diagnostics into drafts (test_ruff_fixes.py)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

import storykit_plugins.ruff as ruff_plugin
from storykit.backends import Draft, GenerateRequest, Policy, SuggestionSource
from storykit.diffs import parse_diff
from storykit.errors import BackendError, Invalid
from storykit.gitdiff import Edit, Lines, apply_edits, file_diff, header
from storykit.plugins import Registry, get_plugin_manager
from storykit.settings import Settings
from storykit_plugins.ruff import RuffPolicy, RuffSource

anyio = pytest.mark.anyio
RUFF = [sys.executable, "-m", "ruff"]
MESSY = (
    "from typing import List\n"
    "import os, sys\n"
    "\n"
    "\n"
    "def f(x: List[int]) -> List[int]:   \n"
    "    return x\n"
)
Files = Mapping[str, str | bytes]


async def _generate(repo: Path, **kw: Any) -> list[Draft]:
    return list(await RuffSource().generate(GenerateRequest(repo_path=repo, **kw)))


def _by_rule(drafts: list[Draft]) -> dict[tuple[str, str], Draft]:
    return {(str(d.metadata["file"]), str(d.metadata["rule"])): d for d in drafts}


def _apply(root: Path, diff: str, *, check: bool = False) -> subprocess.CompletedProcess[bytes]:
    args = ["git", "apply", *(["--check"] if check else []), "-"]
    return subprocess.run(args, cwd=root, input=diff.encode(), capture_output=True, check=False)


def _ruff_fix(path: Path, rule: str) -> str:
    """What ``ruff --fix`` itself makes of ``path`` for one rule: the oracle."""
    args = ["check", "--isolated", "--no-cache", "-q", "--exit-zero", "--fix", "--select", rule]
    subprocess.run([*RUFF, *args, path.name], cwd=path.parent, capture_output=True, check=True)
    return path.read_bytes().decode("utf-8")


# -- registration and settings -----------------------------------------------------------
def test_registered_as_ruff_source_and_policy(tmp_path: Path) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(ruff_plugin, name="ruff")
    registry = Registry(pm, Settings.from_env({}, data_dir=tmp_path))
    source = registry.sources["ruff"].backend
    assert isinstance(source, RuffSource)
    assert isinstance(source, SuggestionSource)
    policy = registry.policies["ruff"].backend
    assert isinstance(policy, RuffPolicy)
    assert isinstance(policy, Policy)


def test_select_comes_from_settings(tmp_path: Path) -> None:
    settings = Settings.from_env({"STORYKIT_RUFF_SELECT": "F401, W"}, data_dir=tmp_path)
    assert RuffSource.from_settings(settings).ruff.select == ("F401", "W")
    default = Settings.from_env({}, data_dir=tmp_path)
    assert RuffSource.from_settings(default).ruff.select == ("E", "F", "W", "I", "UP", "B")


# -- generate ---------------------------------------------------------------------------
@anyio
async def test_one_draft_per_file_and_rule_against_head(
    repo_make: Callable[..., Path],
    repo_write: Callable[[Path, Files], None],
    repo_snapshot: Callable[[Path], dict[str, str]],
    git_cmd: Callable[..., str],
    tmp_path: Path,
) -> None:
    repo = repo_make({"pkg/a.py": MESSY, "b.py": "x = 1   \n", "README.md": "# hi  \n"})
    # A dirty working tree: none of this may leak into the suggestions or be touched.
    repo_write(repo, {"pkg/a.py": "import json\n", "new.py": "import os\n"})
    before = repo_snapshot(repo)
    drafts = await _generate(repo)
    assert repo_snapshot(repo) == before

    rules = _by_rule(drafts)
    assert set(rules) == {
        ("pkg/a.py", "I001"),
        ("pkg/a.py", "E401"),
        ("pkg/a.py", "F401"),
        ("pkg/a.py", "UP006"),
        ("pkg/a.py", "W291"),
        ("b.py", "W291"),
    }
    head = git_cmd(repo, "rev-parse", "HEAD").strip()
    up006 = rules["pkg/a.py", "UP006"]
    assert up006.title == (
        "ruff UP006: Use `list` instead of `List` for type annotation in pkg/a.py (2 places)"
    )
    assert "UP006" in up006.rationale
    assert "https://docs.astral.sh/ruff/rules/non-pep585-annotation" in up006.rationale
    assert up006.base_ref == head
    # Two F401 diagnostics share one fix (the whole statement goes): one edit, one hunk.
    f401 = rules["pkg/a.py", "F401"]
    assert f401.metadata["fixes"] == 2
    assert parse_diff(f401.diff).removed == 1

    clone = tmp_path / "clone"
    git_cmd(tmp_path, "clone", "-q", str(repo), str(clone))
    for draft in drafts:
        parsed = parse_diff(draft.diff)
        assert parsed.files == (draft.metadata["file"],)
        assert draft.diff.startswith(f"diff --git a/{parsed.files[0]} b/{parsed.files[0]}\n")
        result = _apply(clone, draft.diff, check=True)
        assert result.returncode == 0, (draft.title, result.stderr)


@anyio
async def test_fixes_match_ruff_itself_on_awkward_text(
    repo_make: Callable[..., Path], tmp_path: Path
) -> None:
    files: dict[str, str | bytes] = {
        # ruff columns count characters; these sit after multi-byte characters.
        "uni.py": 'from typing import List\ns = "é€😀"; y: List[str] = []  \n',
        "crlf.py": "from typing import Dict\r\n\r\nx: Dict[str, int] = {}   \r\n",
        "noeol.py": "from typing import List\nx: List[int] = []",
        "ff.py": "from typing import List\n\x0c\nx: List[int] = []\t\nz = 1 \x0c\n",
        "tabs.py": "def f():\n\tx: 'List[int]' = [] \n\treturn x\n",
        # ruff's columns on the first line do not count a byte order mark.
        "bom.py": "\ufeffx = 1   \nimport os, sys\n",
    }
    repo = repo_make(files)
    drafts = await _generate(repo)
    assert drafts
    for draft in drafts:
        name = str(draft.metadata["file"])
        rule = str(draft.metadata["rule"])
        work = tmp_path / f"apply-{name}-{rule}"
        work.mkdir()
        original = files[name]
        assert isinstance(original, str)
        (work / name).write_bytes(original.encode())
        result = _apply(work, draft.diff)
        assert result.returncode == 0, (draft.title, result.stderr.decode(), draft.diff)
        ours = (work / name).read_bytes().decode()
        oracle = tmp_path / f"oracle-{name}-{rule}"
        oracle.mkdir()
        (oracle / name).write_bytes(original.encode())
        assert ours == _ruff_fix(oracle / name, rule), draft.diff
    rules = {(str(d.metadata["file"]), str(d.metadata["rule"])) for d in drafts}
    expected = {("uni.py", "UP006"), ("crlf.py", "UP006"), ("noeol.py", "W292"), ("bom.py", "W291")}
    assert expected <= rules


@anyio
async def test_paths_limit_the_run(repo_make: Callable[..., Path]) -> None:
    repo = repo_make({"pkg/a.py": MESSY, "other/b.py": "x = 1   \n", "notes.txt": "x  \n"})
    drafts = await _generate(repo, paths=("pkg",))
    assert {d.metadata["file"] for d in drafts} == {"pkg/a.py"}
    assert await _generate(repo, paths=("notes.txt",)) == []
    assert {d.metadata["file"] for d in await _generate(repo, paths=("other/b.py", "."))} == {
        "pkg/a.py",
        "other/b.py",
    }
    with pytest.raises(Invalid, match="leaves the repository"):
        await _generate(repo, paths=("../elsewhere",))
    with pytest.raises(Invalid, match="not in HEAD"):
        await _generate(repo, paths=("missing.py",))


@anyio
async def test_binary_and_undecodable_files_are_skipped(repo_make: Callable[..., Path]) -> None:
    repo = repo_make(
        {
            "nul.py": b"x = 1   \n\x00\x01",
            "latin1.py": "s = 'caf\xe9'   \n".encode("latin-1"),
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
            "ok.py": "x = 1   \n",
        }
    )
    drafts = await _generate(repo)
    assert {d.metadata["file"] for d in drafts} == {"ok.py"}


@anyio
async def test_repository_config_wins_over_defaults(repo_make: Callable[..., Path]) -> None:
    config = '[project]\nname = "x"\n\n[tool.ruff.lint]\nselect = ["F401"]\n'
    repo = repo_make({"pyproject.toml": config, "a.py": MESSY})
    drafts = await _generate(repo)
    assert {d.metadata["rule"] for d in drafts} == {"F401"}


@anyio
async def test_requires_python_sets_the_target_without_config(
    repo_make: Callable[..., Path],
) -> None:
    # UP006 (list[int]) needs Python 3.9; a project that supports 3.8 must not get it.
    source = "from typing import List\nx: List[int] = []\n"
    old = repo_make({"pyproject.toml": '[project]\nrequires-python = ">=3.8"\n', "a.py": source})
    assert "UP006" not in {d.metadata["rule"] for d in await _generate(old)}
    new = repo_make(
        {"pyproject.toml": '[project]\nrequires-python = ">=3.11"\n', "a.py": source}, name="new"
    )
    assert "UP006" in {d.metadata["rule"] for d in await _generate(new)}


@anyio
async def test_progress_is_reported(repo_make: Callable[..., Path]) -> None:
    repo = repo_make({"a.py": MESSY, "b.py": "x = 1   \n"})
    seen: list[dict[str, Any]] = []

    async def progress(update: Mapping[str, Any]) -> None:
        seen.append(dict(update))

    drafts = await _generate(repo, progress=progress)
    assert all(u["source"] == "ruff" for u in seen)
    assert [u["stage"] for u in seen][:2] == ["export", "export"]
    assert seen[1]["done"] == seen[1]["total"] == 2
    assert seen[-1] == {"source": "ruff", "stage": "fix", "done": 6, "total": 6}
    assert len(drafts) == 6


@anyio
async def test_a_repository_without_commits_is_a_clear_error(
    tmp_path: Path, git_cmd: Callable[..., str]
) -> None:
    git_cmd(tmp_path, "init", "-q", str(tmp_path / "empty"))
    with pytest.raises(BackendError, match="no commits"):
        await _generate(tmp_path / "empty")


# -- the diff writer -----------------------------------------------------------------------
def test_written_diffs_apply_exactly(tmp_path: Path) -> None:
    """Random texts and random edits: git must turn the old text into exactly the new one."""
    rng = random.Random(20240607)
    alphabet = ["a", "b", " ", "\n", "\n", "\r\n", "é", "\t", "\x0c", "x\n"]
    for case in range(60):
        old = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 120)))
        edits: list[Edit] = []
        pos = 0
        while pos <= len(old) and rng.random() < 0.8:
            start = rng.randrange(pos, len(old) + 1)
            end = rng.randrange(start, min(len(old), start + 8) + 1)
            content = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 6)))
            edits.append(Edit(start, end, content))
            pos = end + 1
        new, regions = apply_edits(old, edits)
        if new == old:
            continue
        work = tmp_path / f"case{case}"
        work.mkdir()
        (work / "f.txt").write_bytes(old.encode())
        diff = header("f.txt") + file_diff(Lines(old), new, regions)
        result = subprocess.run(
            ["git", "apply", "-"],
            cwd=work,
            env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)},
            input=diff.encode(),
            capture_output=True,
            check=False,
        )
        assert result.returncode == 0, (case, repr(old), edits, diff, result.stderr)
        assert (work / "f.txt").read_bytes().decode() == new, (case, diff)


def test_hunks_far_apart_stay_separate_and_near_ones_merge() -> None:
    old = "".join(f"line {n}\n" for n in range(1, 31))
    lines = Lines(old)

    def at(n: int) -> int:
        return old.index(f"line {n}\n")

    new, regions = apply_edits(old, [Edit(at(2), at(2) + 4, "LINE"), Edit(at(20), at(20), "new\n")])
    diff = file_diff(lines, new, regions)
    assert diff.count("@@ -") == 2
    assert "@@ -1,5 +1,5 @@\n line 1\n-line 2\n+LINE 2\n line 3\n" in diff
    assert "@@ -17,6 +17,7 @@\n line 17\n line 18\n line 19\n+new\n line 20\n" in diff
    new, regions = apply_edits(old, [Edit(at(2), at(2) + 4, "A"), Edit(at(8), at(8) + 4, "B")])
    assert file_diff(lines, new, regions).count("@@ -") == 1


def test_apply_edits_refuses_overlaps() -> None:
    with pytest.raises(ValueError, match="overlap"):
        apply_edits("abcdef", [Edit(0, 3, "x"), Edit(2, 4, "y")])
