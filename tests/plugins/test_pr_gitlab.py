"""The ``gitlab`` PR backend against recorded GitLab REST API (v4) responses.

As in ``test_pr_github.py``, the base files come from a real local repository with
fixed commit ids (``forge_repo``), so the recorded branch response names the very
commit the suggestions were reviewed against; the assertions check the commit
actions' file contents after the variant's diff is applied to it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

import storykit_plugins.pr_gitlab as pr_gitlab_module
from storykit.backends import PRRequest
from storykit.diffs import diff_hash
from storykit.errors import BackendError, Conflict, Invalid, NotConfigured
from storykit.models import Action, Review, Risk, Status, Suggestion, Variant
from storykit.plugins import Registry, get_plugin_manager
from storykit.settings import Settings
from storykit_plugins._forge import FileChange
from storykit_plugins.pr_gitlab import GitLabBackend, _actions

pytestmark = pytest.mark.anyio

MakeReplay = Callable[..., Any]  # conftest.forge_replay
Snapshot = Callable[[Path], dict[str, str]]

TOKEN = "glpat-SECRETtoken0123456789"
ENV = {
    "GITLAB_TOKEN": TOKEN,
    "STORYKIT_GITLAB_PROJECT": "octo/hello",
    "STORYKIT_GITLAB_DRAFT": "yes",
    "STORYKIT_GITLAB_LABELS": "storykit,automated",
}
P = "/api/v4/projects/octo%2Fhello"
BRANCH = "storykit/plan-7-all"
BRANCH_PATH = f"{P}/repository/branches/storykit%2Fplan-7-all"
BASE = "f6b754d5e5bb5e98486b7955bcc4abf7f190cb35"  # forge_repo(FILES, executable=EXEC)
COMMIT = "2f8c1e0d9b7a6c5e4d3f2a1b0c9d8e7f6a5b4c3d"  # recorded/gitlab/commit_created.json
NOW = 1_700_000_000.0

FILES: dict[str, str | bytes] = {
    "app/main.py": "import os\n\n\ndef main():\n    return os.name\n",
    "README.md": "hello\n",
    "tools/run.sh": "#!/bin/sh\necho run\n",
    "old.txt": "obsolete\n",
}
EXEC = ("tools/run.sh",)
CODE = (
    "diff --git a/app/main.py b/app/main.py\n--- a/app/main.py\n+++ b/app/main.py\n"
    "@@ -2,4 +2,4 @@ import os\n \n \n def main():\n-    return os.name\n+    return os.sep\n"
    "diff --git a/tools/run.sh b/tools/run.sh\n--- a/tools/run.sh\n+++ b/tools/run.sh\n"
    "@@ -1,2 +1,2 @@\n #!/bin/sh\n-echo run\n+echo running\n"
)
DOCS = (
    "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n"
    "@@ -1 +1 @@\n-hello\n+Hello.\n"
    "diff --git a/docs/new.md b/docs/new.md\nnew file mode 100644\n"
    "--- /dev/null\n+++ b/docs/new.md\n@@ -0,0 +1,2 @@\n+# New\n+Text.\n"
    "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n"
    "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-obsolete\n"
)
# A new executable script, a binary file, and a script that stops being executable.
MODES = (
    "diff --git a/tools/new.sh b/tools/new.sh\nnew file mode 100755\n"
    "--- /dev/null\n+++ b/tools/new.sh\n@@ -0,0 +1 @@\n+echo new\n"
    "diff --git a/tools/run.sh b/tools/run.sh\nold mode 100755\nnew mode 100644\n"
)
HAPPY = [
    ("GET", P, "project"),
    ("GET", f"{P}/repository/branches/main", "branch_main"),
    ("POST", f"{P}/repository/commits", "commit_created"),
    ("POST", f"{P}/merge_requests", "mr_created"),
]


def _suggestion(sid: str, diff: str, reviewers: Mapping[str, bool]) -> Suggestion:
    digest = diff_hash(diff)
    reviews = tuple(
        Review(reviewer=name, action=Action.APPROVE, diff_hash=digest if current else "sha256:old")
        for name, current in reviewers.items()
    )
    return Suggestion(
        id=sid,
        source="ruff",
        agent="agent",
        title=f"Fix {sid}",
        diff=diff,
        diff_hash=digest,
        files=(),
        risk=Risk.LOW,
        status=Status.APPROVED,
        reviews=reviews,
    )


def _request(repo: Path, work: Path, diff: str = CODE + DOCS) -> PRRequest:
    s1 = _suggestion("sug-1", CODE, {"alice": True, "mallory": False})
    s2 = _suggestion("sug-2", DOCS, {"bob": True})
    variant = Variant(
        key="all", title="All 2 suggestions", suggestion_ids=("sug-1", "sug-2"), diff=diff
    )
    return PRRequest(
        repo_path=repo,
        plan_id="plan-7",
        goal="Tidy the code\n\nAs discussed.",
        variant=variant,
        suggestions=(s1, s2),
        branch=BRANCH,
        base_ref="main",
        dry_run=False,
        requested_by="carol",
        work_dir=work,
    )


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _backend(
    replay: Any, env: Mapping[str, str] = ENV, sleep: Sleeps | None = None
) -> GitLabBackend:
    return GitLabBackend(env, client=replay.client, sleep=sleep or Sleeps(), clock=lambda: NOW)


@pytest.fixture
def repo(forge_repo: Callable[..., Path]) -> Path:
    return forge_repo(FILES, executable=EXEC)


async def test_branch_commit_and_draft_merge_request_in_four_calls(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay, repo_snapshot: Snapshot
) -> None:
    replay = forge_replay("gitlab", HAPPY)
    before = repo_snapshot(repo)
    result = await _backend(replay).open(_request(repo, tmp_path / "work"))

    assert replay.calls() == [f"{m} {p}" for m, p, _ in HAPPY]
    commit = replay.body("POST", f"{P}/repository/commits")
    assert commit["branch"] == BRANCH
    assert commit["start_sha"] == BASE
    assert commit["commit_message"].endswith("Approved-by: alice\nApproved-by: bob\n")
    assert commit["actions"] == [
        {"action": "update", "file_path": "README.md", "content": "Hello.\n", "encoding": "text"},
        {
            "action": "update",
            "file_path": "app/main.py",
            "content": "import os\n\n\ndef main():\n    return os.sep\n",
            "encoding": "text",
        },
        {
            "action": "create",
            "file_path": "docs/new.md",
            "content": "# New\nText.\n",
            "encoding": "text",
        },
        {"action": "delete", "file_path": "old.txt"},
        {
            "action": "update",
            "file_path": "tools/run.sh",
            "content": "#!/bin/sh\necho running\n",
            "encoding": "text",
        },
    ]
    mr = replay.body("POST", f"{P}/merge_requests")
    assert {k: v for k, v in mr.items() if k != "description"} == {
        "source_branch": BRANCH,
        "target_branch": "main",
        "title": "Draft: Tidy the code",
        "labels": "storykit,automated",
    }
    assert "**storykit plan:** `plan-7`" in mr["description"]
    assert replay.requests[0].headers["private-token"] == TOKEN

    assert result.backend == "gitlab"
    assert result.commit == COMMIT
    assert result.url == "https://gitlab.com/octo/hello/-/merge_requests/7"
    assert (result.number, result.repository) == (7, "4")  # as its webhooks name it
    assert result.dry_run is False
    # Operations name paths as GitLab's API docs do: relative to the API base.
    assert list(result.operations) == [f"{m} {p.removeprefix('/api/v4')}" for m, p, _ in HAPPY]
    assert repo_snapshot(repo) == before


async def test_executable_bits_and_binary_content(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("gitlab", HAPPY)
    await _backend(replay, {**ENV, "STORYKIT_GITLAB_DRAFT": "", "STORYKIT_GITLAB_LABELS": ""}).open(
        _request(repo, tmp_path / "work", MODES)
    )
    assert replay.body("POST", f"{P}/repository/commits")["actions"] == [
        {
            "action": "create",
            "file_path": "tools/new.sh",
            "content": "echo new\n",
            "encoding": "text",
        },
        {"action": "chmod", "file_path": "tools/new.sh", "execute_filemode": True},
        # Only the mode changed: no rewrite of the content.
        {"action": "chmod", "file_path": "tools/run.sh", "execute_filemode": False},
    ]
    mr = replay.body("POST", f"{P}/merge_requests")
    assert mr["title"] == "Tidy the code" and "labels" not in mr


def test_binary_content_is_sent_base64() -> None:
    logo = bytes(range(256))
    change = FileChange(
        path="logo.bin",
        status="M",
        mode="100644",
        old_mode="100644",
        old_oid="1" * 40,
        oid="2" * 40,
        content=logo,
    )
    encoded = base64.b64encode(logo).decode()
    assert _actions(change) == [
        {"action": "update", "file_path": "logo.bin", "content": encoded, "encoding": "base64"}
    ]


async def test_a_moved_target_branch_is_fine_when_the_base_is_its_ancestor(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay(
        "gitlab",
        [
            HAPPY[0],
            ("GET", f"{P}/repository/branches/main", "branch_main_moved"),
            ("GET", f"{P}/repository/merge_base", "merge_base"),
            *HAPPY[2:],
        ],
    )
    result = await _backend(replay).open(_request(repo, tmp_path / "work"))
    assert result.operations[2] == (
        f"GET /projects/octo%2Fhello/repository/merge_base?refs%5B%5D={'a' * 40}&refs%5B%5D={BASE}"
    )
    assert replay.body("POST", f"{P}/repository/commits")["start_sha"] == BASE


async def test_a_base_gitlab_does_not_have_is_refused(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay(
        "gitlab",
        [
            HAPPY[0],
            ("GET", f"{P}/repository/branches/main", "branch_main_moved"),
            ("GET", f"{P}/repository/merge_base", "commit_not_found"),
        ],
    )
    with pytest.raises(Conflict, match=r"f6b754d5e5bb is not on GitLab \(octo/hello\); push it"):
        await _backend(replay).open(_request(repo, tmp_path / "work"))


# -- errors -------------------------------------------------------------------------------
async def test_a_bad_token(repo: Path, tmp_path: Path, forge_replay: MakeReplay) -> None:
    replay = forge_replay("gitlab", [("GET", P, "unauthorized")])
    with pytest.raises(BackendError) as caught:
        await _backend(replay).open(_request(repo, tmp_path / "work"))
    assert caught.value.detail == (
        "GitLab rejected the token: set GITLAB_TOKEN to a token with api scope"
        " (GitLab said: 401 Unauthorized)"
    )


async def test_a_token_without_api_scope(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("gitlab", [*HAPPY[:2], (*HAPPY[2][:2], "insufficient_scope")])
    with pytest.raises(BackendError, match=r"requires higher privileges.*needs api scope"):
        await _backend(replay).open(_request(repo, tmp_path / "work"))


async def test_an_unknown_project(repo: Path, tmp_path: Path, forge_replay: MakeReplay) -> None:
    replay = forge_replay("gitlab", [("GET", P, "project_not_found")])
    with pytest.raises(BackendError, match=r"404 Project Not Found\): the project octo/hello"):
        await _backend(replay).open(_request(repo, tmp_path / "work"))


async def test_an_unknown_target_branch(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay(
        "gitlab", [HAPPY[0], ("GET", f"{P}/repository/branches/release", "branch_not_found")]
    )
    with pytest.raises(Invalid, match=r"no branch 'release'.*STORYKIT_GITLAB_BASE"):
        await _backend(replay, {**ENV, "STORYKIT_GITLAB_BASE": "release"}).open(
            _request(repo, tmp_path / "work")
        )


async def test_an_existing_branch_is_a_conflict(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("gitlab", [*HAPPY[:2], (*HAPPY[2][:2], "branch_exists")])
    with pytest.raises(Conflict, match=f"branch '{BRANCH}' already exists on GitLab"):
        await _backend(replay).open(_request(repo, tmp_path / "work"))


async def test_an_existing_merge_request_is_a_conflict_and_the_branch_is_removed(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay(
        "gitlab",
        [
            *HAPPY[:3],
            ("POST", f"{P}/merge_requests", "mr_exists"),
            ("GET", f"{P}/merge_requests", "mrs_open"),
            ("DELETE", BRANCH_PATH, "branch_deleted"),
        ],
    )
    with pytest.raises(Conflict) as caught:
        await _backend(replay).open(_request(repo, tmp_path / "work"))
    assert caught.value.detail == (
        f"a merge request already exists for branch {BRANCH!r}"
        " (!6: https://gitlab.com/octo/hello/-/merge_requests/6);"
        f" branch {BRANCH!r} was deleted again"
    )
    assert replay.requests[4].query == {"source_branch": BRANCH, "state": "opened"}


async def test_rate_limits_are_waited_out(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("gitlab", [("GET", P, "rate_limited"), *HAPPY])
    sleeps = Sleeps()
    result = await _backend(replay, sleep=sleeps).open(_request(repo, tmp_path / "work"))
    assert sleeps.waits == [2.0]
    assert result.operations[1] == "# rate limited (HTTP 429); waited 2s"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx.ReadTimeout("slow"), "GitLab did not answer in time while reading the project"),
        (
            httpx.ConnectError("refused"),
            "could not reach GitLab at https://gitlab.com while reading the project:"
            " ConnectError: refused",
        ),
    ],
)
async def test_network_failures_are_backend_errors(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay, error: Exception, message: str
) -> None:
    replay = forge_replay("gitlab", [("GET", P, error)])
    with pytest.raises(BackendError, match=message) as caught:
        await _backend(replay).open(_request(repo, tmp_path / "work"))
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None  # the httpx error, whose request holds the token


async def test_symbolic_links_are_refused_before_any_request(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    link = (
        "diff --git a/latest b/latest\nnew file mode 120000\n"
        "--- /dev/null\n+++ b/latest\n@@ -0,0 +1 @@\n+README.md\n\\ No newline at end of file\n"
    )
    replay = forge_replay("gitlab", [])
    with pytest.raises(Invalid, match="latest: GitLab's commits API cannot write symbolic links"):
        await _backend(replay).open(_request(repo, tmp_path / "work", link))


def test_registered_always(tmp_path: Path) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(pr_gitlab_module, name="gitlab")
    registry = Registry(pm, Settings.from_env({}, data_dir=tmp_path))
    assert registry.pr_backends["gitlab"].backend.capabilities == frozenset(
        {"push", "pull_request", "draft", "labels"}
    )


@pytest.mark.parametrize(
    ("env", "error", "message"),
    [
        ({}, NotConfigured, "needs GITLAB_TOKEN and STORYKIT_GITLAB_PROJECT"),
        ({**ENV, "STORYKIT_GITLAB_PROJECT": "hello"}, Invalid, "like group/name"),
        ({**ENV, "STORYKIT_GITLAB_PROJECT": "123"}, None, ""),
    ],
)
async def test_settings(
    repo: Path,
    tmp_path: Path,
    forge_replay: MakeReplay,
    env: dict[str, str],
    error: type[Exception] | None,
    message: str,
) -> None:
    if error is None:  # a numeric id is used as it is
        replay = forge_replay("gitlab", [("GET", "/api/v4/projects/123", "unauthorized")])
        with pytest.raises(BackendError, match="rejected the token"):
            await _backend(replay, env).open(_request(repo, tmp_path / "work"))
        return
    replay = forge_replay("gitlab", [])
    with pytest.raises(error, match=message):
        await _backend(replay, env).open(_request(repo, tmp_path / "work"))
