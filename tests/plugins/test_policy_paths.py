"""The ``paths`` policy: allowed and denied globs, size limits and binary files."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from storykit.backends import Policy, PolicySubject
from storykit.errors import Invalid
from storykit.models import Finding, Outcome
from storykit.plugins import Registry
from storykit.testing import make_diff
from storykit_plugins.policies import paths

pytestmark = pytest.mark.anyio

BINARY = (
    "diff --git a/img/logo.png b/img/logo.png\n"
    "index 0000000..1111111 100644\n"
    "Binary files a/img/logo.png and b/img/logo.png differ\n"
)
RENAME = (
    "diff --git a/secrets/token.txt b/public/token.txt\n"
    "similarity index 100%\n"
    "rename from secrets/token.txt\n"
    "rename to public/token.txt\n"
)
DELETE = (
    "diff --git a/secrets/old.key b/secrets/old.key\n"
    "deleted file mode 100644\n"
    "--- a/secrets/old.key\n"
    "+++ /dev/null\n"
    "@@ -1 +0,0 @@\n"
    "-k\n"
)


@pytest.fixture
def policy(policy_registry: Callable[..., Registry]) -> Policy:
    return policy_registry(paths).policies["paths"].backend


def _change(*names: str) -> str:
    return "".join(make_diff(name, "a\n", "b\n") for name in names)


async def _check(policy: Policy, diff: str, **config: Any) -> list[tuple[str, str | None, Outcome]]:
    found: list[Finding] = list(await policy.check(PolicySubject(diff=diff), config))
    assert all(f.policy == "paths" for f in found)
    return [(f.rule, f.file, f.severity) for f in found]


def test_it_registers_with_plain_json_defaults(policy: Policy) -> None:
    assert isinstance(policy, paths.PathsPolicy)
    defaults = policy.default_config()
    assert json.loads(json.dumps(defaults)) == defaults == policy.default_config()
    defaults["deny"].append("x")  # the caller's copy
    assert policy.default_config()["deny"] == []


async def test_an_empty_allow_list_allows_everything(policy: Policy) -> None:
    assert await _check(policy, _change("a.py", "deep/down/b.txt"), allow=[]) == []


async def test_paths_outside_the_allow_list_are_denied(policy: Policy) -> None:
    result = await _check(
        policy, _change("src/a.py", "README.md", "tools/x.sh"), allow=["src/**", "*.md"]
    )
    assert result == [("not-allowed", "tools/x.sh", Outcome.DENY)]


async def test_deny_wins_over_allow(policy: Policy) -> None:
    diff = _change("src/a.py", "src/secrets/key.pem")
    result = await _check(policy, diff, allow=["src/**"], deny=["*.pem"])
    assert result == [("denied-path", "src/secrets/key.pem", Outcome.DENY)]


async def test_a_finding_names_the_glob_that_denied(policy: Policy) -> None:
    found = await policy.check(
        PolicySubject(diff=_change(".github/workflows/ci.yml")), {"deny": [".github/workflows/**"]}
    )
    assert [f.message for f in found] == [
        ".github/workflows/ci.yml matches the denied glob '.github/workflows/**'"
    ]


async def test_both_names_of_a_rename_are_checked(policy: Policy) -> None:
    assert await _check(policy, RENAME, deny=["secrets/**"]) == [
        ("denied-path", "secrets/token.txt", Outcome.DENY)
    ]


async def test_deleting_a_denied_file_is_a_change_to_it(policy: Policy) -> None:
    assert await _check(policy, DELETE, deny=["secrets/"]) == [
        ("denied-path", "secrets/old.key", Outcome.DENY)
    ]


async def test_too_many_files(policy: Policy) -> None:
    diff = _change("a", "b", "c")
    assert await _check(policy, diff, max_files=3) == []
    assert await _check(policy, diff, max_files=2) == [("too-many-files", None, Outcome.DENY)]
    assert await _check(policy, diff, max_files=2, limit_severity="warn") == [
        ("too-many-files", None, Outcome.WARN)
    ]


async def test_too_many_changed_lines_counts_added_and_removed(policy: Policy) -> None:
    diff = make_diff("a.txt", "1\n2\n3\n", "1\nx\ny\nz\n")  # 2 removed, 3 added
    assert await _check(policy, diff, max_changed_lines=5) == []
    found = await policy.check(PolicySubject(diff=diff), {"max_changed_lines": 4})
    assert [(f.rule, f.message) for f in found] == [
        (
            "too-many-lines",
            "changes 5 lines (3 added, 2 removed); the limit is 4 (max_changed_lines)",
        )
    ]


async def test_null_turns_a_limit_off_and_left_out_keys_keep_their_defaults(policy: Policy) -> None:
    diff = _change(*(f"f{i}.txt" for i in range(101)))
    assert await _check(policy, diff, deny=["nothing"]) == [("too-many-files", None, Outcome.DENY)]
    assert await _check(policy, diff, max_files=None) == []


async def test_binary_files(policy: Policy) -> None:
    assert await _check(policy, BINARY) == [("binary-file", "img/logo.png", Outcome.DENY)]
    assert await _check(policy, BINARY, allow_binary=True) == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"allow": "src/**"}, r'"allow" must be a list of strings, not "src/\*\*"'),
        ({"deny": ["ok", "[z-a]"]}, r'"deny"\[1\]: glob .*not valid'),
        ({"max_files": 0}, r'"max_files" must be a whole number of at least 1, or null'),
        ({"max_changed_lines": True}, r'"max_changed_lines" must be a whole number'),
        ({"max_files": 2.5}, r'"max_files" must be a whole number'),
        ({"allow_binary": "no"}, r'"allow_binary" must be true or false, not "no"'),
        ({"limit_severity": "block"}, r'"limit_severity" must be "warn" or "deny", not "block"'),
        ({"alow": []}, r"unknown key 'alow'"),
    ],
)
def test_bad_configs_say_what_is_wrong(
    policy: Policy, config: Mapping[str, Any], message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        policy.validate_config(config)
