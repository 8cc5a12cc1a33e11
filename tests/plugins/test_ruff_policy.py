"""The ``ruff`` policy: does a diff from outside apply to its base, what ruff says of the
lines it adds; on real git repositories, alone and through the core."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from unidiff.patch import PatchSet

import storykit.diffs
import storykit_plugins.ruff as ruff_plugin
from storykit.backends import PolicySubject
from storykit.errors import Conflict, Invalid
from storykit.models import Finding, Outcome, Status
from storykit.testing import ADMIN, AGENT, REVIEWER, make_diff, open_core
from storykit_plugins.ruff import RuffPolicy
from storykit_plugins.ruff.findings import DEFAULTS

anyio = pytest.mark.anyio
TYPO = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-teh\n+the\n"
UNUSED = make_diff(
    "a.py", "import sys\n\nprint(sys.argv)\n", "import sys\nimport typing\n\nprint(sys.argv)\n"
)
USES_SYS = "import sys\n\nprint(sys.argv)\n"


async def _check(
    repo: Path | None,
    diff: str,
    *,
    base_ref: str = "HEAD",
    config: Mapping[str, Any] = DEFAULTS,
) -> list[Finding]:
    subject = PolicySubject(diff=diff, repo_path=repo, base_ref=base_ref)
    return list(await RuffPolicy().check(subject, config))


@anyio
async def test_policy_flags_only_added_lines(
    repo_make: Callable[..., Path], repo_snapshot: Callable[[Path], dict[str, str]]
) -> None:
    repo = repo_make({"app/a.py": "import os\n\n\ndef f():\n    return 1\n"})
    diff = (
        "diff --git a/app/a.py b/app/a.py\n"
        "--- a/app/a.py\n"
        "+++ b/app/a.py\n"
        "@@ -1,5 +1,7 @@\n"
        " import os\n"
        "+import sys\n"
        " \n"
        " \n"
        " def f():\n"
        "-    return 1\n"
        "+    x = 1\n"
        "+    return undefined_name\n"
    )
    before = repo_snapshot(repo)
    findings = await _check(repo, diff)
    assert repo_snapshot(repo) == before
    assert {(f.rule, f.file, f.line) for f in findings} == {
        ("ruff:F401", "app/a.py", 2),  # the new unused import; the old one on line 1 is not ours
        ("ruff:F841", "app/a.py", 6),
        ("ruff:F821", "app/a.py", 7),
    }
    assert all(f.severity is Outcome.WARN and f.policy == "ruff" for f in findings)


@anyio
async def test_policy_of_a_new_file_and_a_syntax_error(repo_make: Callable[..., Path]) -> None:
    repo = repo_make({"README.md": "hi\n"})
    diff = (
        "diff --git a/new.py b/new.py\n"
        "new file mode 100644\n"
        "--- /dev/null\n"
        "+++ b/new.py\n"
        "@@ -0,0 +1,2 @@\n"
        "+def f(:\n"
        "+    pass\n"
    )
    findings = await _check(repo, diff)
    assert {f.rule for f in findings} == {"ruff:invalid-syntax"}
    assert findings[0].file == "new.py"


@anyio
async def test_a_diff_that_does_not_apply_to_its_base_is_denied(
    repo_make: Callable[..., Path], git_cmd: Callable[..., str]
) -> None:
    repo = repo_make({"a.py": "x = 1\n", "README.md": "the\n"})
    head = git_cmd(repo, "rev-parse", "HEAD").strip()
    stale = "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 2\n+x = 3\n"
    typo = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-teh\n+the\n"  # not Python
    for diff, path in ((stale, "a.py"), (typo, "README.md")):
        findings = await _check(repo, diff)
        assert [(f.rule, f.severity) for f in findings] == [("diff:does-not-apply", Outcome.DENY)]
        message = findings[0].message
        assert message.startswith(f"the diff does not apply to HEAD ({head[:12]}): ")
        assert f"patch failed: {path}:1" in message  # git's reason
        assert message.endswith(
            "make it against HEAD, or set base_ref to the commit it was made on"
        )
    fine = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-the\n+The\n"
    assert await _check(repo, fine) == []


@anyio
async def test_the_core_blocks_it_and_a_revision_that_applies_unblocks_it(
    repo_make: Callable[..., Path], tmp_path: Path
) -> None:
    repo = repo_make({"README.md": "the\n"})
    typo = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-teh\n+the\n"
    fine = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-the\n+The\n"
    env = {"REPO_PATH": str(repo)}
    async with open_core(tmp_path, plugins={"ruff": ruff_plugin}, env=env) as core:
        s = await core.submit(AGENT, title="Fix a typo", diff=typo)
        assert s.status is Status.BLOCKED
        assert [(f.rule, f.policy) for f in s.findings] == [("diff:does-not-apply", "ruff")]
        with pytest.raises(Conflict, match="blocked by policy"):
            await core.review(REVIEWER, s.id, action="approve")
        await core.review(REVIEWER, s.id, action="revise", comment="make it against HEAD")
        fixed = await core.revise(AGENT, s.id, diff=fine)
        assert (fixed.status, fixed.findings) == (Status.PENDING, ())
        assert (await core.review(REVIEWER, s.id, action="approve")).status is Status.APPROVED


@anyio
async def test_policy_says_when_it_could_not_check(
    repo_make: Callable[..., Path], tmp_path: Path
) -> None:
    repo = repo_make({"a.py": "x = 1\n"})
    python = "--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 3\n"
    text = "--- a/notes.txt\n+++ b/notes.txt\n@@ -0,0 +1 @@\n+hello\n"
    unknown = await _check(repo, python, base_ref="no-such-branch")
    assert [(f.rule, f.severity) for f in unknown] == [
        ("diff:unchecked", Outcome.WARN),
        ("ruff:skipped", Outcome.WARN),
    ]
    assert "'no-such-branch' does not name a commit" in unknown[0].message
    plain = tmp_path / "not-a-repo"  # REPO_PATH that is no git repository
    plain.mkdir()
    outside = await _check(plain, python)
    assert [f.rule for f in outside] == ["diff:unchecked", "ruff:skipped"]
    assert all("is not a git repository" in f.message for f in outside)
    assert all(f.severity is Outcome.WARN for f in outside)
    missing = await _check(tmp_path / "gone", text)
    assert [f.rule for f in missing] == ["diff:unchecked"]  # no Python file: ruff has no say
    assert "is not a directory" in missing[0].message


@anyio
async def test_policy_reads_a_big_diff_off_the_event_loop(
    repo_make: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    on_loop: list[bool] = []
    real_patch_set = PatchSet  # what storykit.diffs imported

    def patch_set(diff: str) -> Any:
        on_loop.append(threading.current_thread() is threading.main_thread())
        return real_patch_set(diff)

    monkeypatch.setattr(storykit.diffs, "PatchSet", patch_set)
    repo = repo_make({"README.md": "hi\n"})
    big = make_diff("big.py", "", "x = 1\n" * 20_000)
    assert await _check(repo, big) == []
    assert on_loop == [False]


@anyio
async def test_a_sources_own_draft_is_not_judged(repo_make: Callable[..., Path]) -> None:
    """No repository in the subject: a source made the diff from the repository itself."""
    repo = repo_make({"README.md": "the\n"})
    assert [f.rule for f in await _check(repo, TYPO)] == ["diff:does-not-apply"]
    assert await _check(None, TYPO) == []


@anyio
async def test_the_configuration_weighs_each_check(repo_make: Callable[..., Path]) -> None:
    repo = repo_make({"README.md": "the\n", "a.py": USES_SYS})
    warned = await _check(repo, TYPO, config={"does_not_apply": "warn"})
    assert [(f.rule, f.severity) for f in warned] == [("diff:does-not-apply", Outcome.WARN)]
    assert await _check(repo, TYPO, config={"does_not_apply": "off"}) == []
    linted = await _check(repo, UNUSED, config={"lint": "deny"})
    assert [(f.rule, f.severity) for f in linted] == [("ruff:F401", Outcome.DENY)]
    assert await _check(repo, UNUSED, config={"lint": "off"}) == []
    assert await _check(repo, UNUSED, config={"lint": "off", "does_not_apply": "off"}) == []
    policy = RuffPolicy()
    assert policy.default_config() == {"does_not_apply": "deny", "lint": "warn"}
    with pytest.raises(Invalid, match='"lint" must be "warn", "deny" or "off"'):
        policy.validate_config({"lint": "loud"})
    with pytest.raises(Invalid, match="unknown key 'select'"):
        policy.validate_config({"select": ["E"]})


@anyio
async def test_check_diff_judges_as_a_submission_does(
    repo_make: Callable[..., Path], tmp_path: Path
) -> None:
    """POST /policies/check and the MCP check_diff tool call this: the same findings."""
    repo = repo_make({"README.md": "the\n", "a.py": USES_SYS})
    async with open_core(
        tmp_path, plugins={"ruff": ruff_plugin}, env={"REPO_PATH": str(repo)}
    ) as core:
        checked = await core.check_diff(diff=UNUSED)
        assert [(f.rule, f.policy, f.file, f.line) for f in checked.findings] == [
            ("ruff:F401", "ruff", "a.py", 2)
        ]
        assert checked.outcome is Outcome.WARN
        stale = await core.check_diff(diff=TYPO)
        assert (stale.outcome, [f.rule for f in stale.findings]) == (
            Outcome.DENY,
            ["diff:does-not-apply"],
        )
        submitted = await core.submit(AGENT, title="t", diff=UNUSED)
        assert submitted.findings == checked.findings
        other_base = await core.check_diff(diff=UNUSED, base_ref="no-such-branch")
        assert [f.rule for f in other_base.findings] == ["diff:unchecked", "ruff:skipped"]


@anyio
async def test_one_policy_document_holds_its_section(
    repo_make: Callable[..., Path], tmp_path: Path
) -> None:
    repo = repo_make({"README.md": "the\n"})
    async with open_core(
        tmp_path, plugins={"ruff": ruff_plugin}, env={"REPO_PATH": str(repo)}
    ) as core:
        assert (await core.policy_document())["ruff"] == {"does_not_apply": "deny", "lint": "warn"}
        await core.set_policies(ADMIN, {"ruff": {"does_not_apply": "warn"}})
        s = await core.submit(AGENT, title="Fix a typo", diff=TYPO)
        assert s.status is Status.PENDING
        assert [(f.rule, f.severity) for f in s.findings] == [("diff:does-not-apply", Outcome.WARN)]


@anyio
async def test_generated_drafts_are_not_linted_again(
    repo_make: Callable[..., Path], tmp_path: Path
) -> None:
    repo = repo_make({"a.py": "import os\n"})
    async with open_core(
        tmp_path, plugins={"ruff": ruff_plugin}, env={"REPO_PATH": str(repo)}
    ) as core:
        result = await core.generate(REVIEWER, sources=["ruff"])
        assert [s.title for s in result.suggestions] == [
            "ruff F401: `os` imported but unused in a.py"
        ]
        assert result.suggestions[0].findings == ()


@anyio
async def test_a_commit_made_meanwhile_counts_at_once(
    repo_make: Callable[..., Path], git_cmd: Callable[..., str]
) -> None:
    """The policy keeps what commits hold, never what HEAD names: a new commit, a packed
    branch, a detached HEAD are each read afresh."""
    repo = repo_make({"README.md": "the\n"})
    policy = RuffPolicy()

    async def rules(diff: str) -> list[str]:
        subject = PolicySubject(diff=diff, repo_path=repo)
        return [f.rule for f in await policy.check(subject, DEFAULTS)]

    to_the = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-the\n+The\n"
    to_thy = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-The\n+Thy\n"
    assert await rules(to_the) == []
    assert await rules(to_thy) == ["diff:does-not-apply"]
    (repo / "README.md").write_text("The\n")
    git_cmd(repo, "commit", "-qam", "capital")
    assert await rules(to_thy) == []
    assert await rules(to_the) == ["diff:does-not-apply"]
    git_cmd(repo, "pack-refs", "--all")  # the branch now lives in packed-refs only
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert await rules(to_thy) == []
    git_cmd(repo, "checkout", "-q", "--detach", "HEAD~1")
    assert await rules(to_the) == []
