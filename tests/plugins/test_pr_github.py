"""The ``github`` PR backend against recorded GitHub REST API responses.

The base files come from a real local repository (``forge_repo``) whose commit ids
are fixed, so the recorded ``GET /git/ref`` response can name the very commit the
suggestions were reviewed against, and the recorded ``POST /git/trees`` response the
tree storykit builds from it. The backend checks that GitHub's tree id equals its
own, so those two recordings also pin the exact file contents that were sent.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

import storykit_plugins.pr_github as pr_github_module
from storykit.backends import PRRequest
from storykit.diffs import diff_hash
from storykit.errors import BackendError, Conflict, Invalid, NotConfigured
from storykit.gitdiff import blob_id
from storykit.models import Action, Review, Risk, Status, Suggestion, Variant
from storykit.plugins import Registry, get_plugin_manager
from storykit.settings import Settings
from storykit_plugins.pr_github import GitHubBackend

pytestmark = pytest.mark.anyio

Replay = Any  # conftest.ForgeReplay
MakeReplay = Callable[..., Replay]
Snapshot = Callable[[Path], dict[str, str]]

TOKEN = "ghp_SECRETtoken0123456789"
ENV = {
    "GITHUB_TOKEN": TOKEN,
    "STORYKIT_GITHUB_REPO": "octo/hello",
    "STORYKIT_GITHUB_DRAFT": "true",
    "STORYKIT_GITHUB_LABELS": "storykit, automated",
}
R = "/repos/octo/hello"
BRANCH = "storykit/plan-7-all"
BASE = "f6b754d5e5bb5e98486b7955bcc4abf7f190cb35"  # forge_repo(FILES, executable=EXEC)
BASE_TREE = "734801e8fd84b8b7aaf3deeafc712600590d4d86"
TREE = "b42cba31f3f260a9a7e248994a1f0c8001e57ee4"  # BASE with CODE + DOCS applied
NOW = 1_700_000_000.0

FILES: dict[str, str | bytes] = {
    "app/main.py": "import os\n\n\ndef main():\n    return os.name\n",
    "README.md": "hello\n",
    "tools/run.sh": "#!/bin/sh\necho run\n",
    "old.txt": "obsolete\n",
}
EXEC = ("tools/run.sh",)
CODE = (
    "diff --git a/app/main.py b/app/main.py\n"
    "--- a/app/main.py\n"
    "+++ b/app/main.py\n"
    "@@ -2,4 +2,4 @@ import os\n"
    " \n"
    " \n"
    " def main():\n"
    "-    return os.name\n"
    "+    return os.sep\n"
    "diff --git a/tools/run.sh b/tools/run.sh\n"
    "--- a/tools/run.sh\n"
    "+++ b/tools/run.sh\n"
    "@@ -1,2 +1,2 @@\n"
    " #!/bin/sh\n"
    "-echo run\n"
    "+echo running\n"
)
DOCS = (
    "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n"
    "@@ -1 +1 @@\n-hello\n+Hello.\n"
    "diff --git a/docs/new.md b/docs/new.md\nnew file mode 100644\n"
    "--- /dev/null\n+++ b/docs/new.md\n@@ -0,0 +1,2 @@\n+# New\n+Text.\n"
    "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n"
    "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-obsolete\n"
)
# The script of a run that succeeds, as GitHub sees it.
HAPPY = [
    ("GET", R, "repo"),
    ("GET", f"{R}/git/ref/heads/main", "ref_main"),
    ("POST", f"{R}/git/trees", "tree"),
    ("POST", f"{R}/git/commits", "commit"),
    ("POST", f"{R}/git/refs", "ref_created"),
    ("POST", f"{R}/pulls", "pull_created"),
    ("POST", f"{R}/issues/42/labels", "labels"),
]
COMMIT = "7638417db6d59f3c431d3e1f261cc637155684cd"  # recorded/github/commit.json
LOGO = bytes(range(256)) * 4  # not text: goes to GitHub as a base64 blob


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


def _request(
    repo: Path, work: Path, diff: str = CODE + DOCS, *, dry_run: bool = False
) -> PRRequest:
    s1 = _suggestion("sug-1", CODE, {"alice": True, "mallory": False})
    s2 = _suggestion("sug-2", DOCS, {"bob": True})
    variant = Variant(
        key="all",
        title="All 2 suggestions",
        suggestion_ids=("sug-1", "sug-2"),
        diff=diff,
        risk=Risk.LOW,
    )
    return PRRequest(
        repo_path=repo,
        plan_id="plan-7",
        goal="Tidy the code\n\nAs discussed.",
        variant=variant,
        suggestions=(s1, s2),
        branch=BRANCH,
        base_ref="main",
        dry_run=dry_run,
        requested_by="carol",
        work_dir=work,
    )


class Sleeps:
    """An injected ``sleep`` that only records how long it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _backend(
    replay: Replay, env: Mapping[str, str] = ENV, sleep: Sleeps | None = None
) -> GitHubBackend:
    return GitHubBackend(env, client=replay.client, sleep=sleep or Sleeps(), clock=lambda: NOW)


@pytest.fixture
def repo(forge_repo: Callable[..., Path]) -> Path:
    made = forge_repo(FILES, executable=EXEC)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=made, capture_output=True, text=True)
    assert head.stdout.strip() == BASE, "the fixed commit changed: re-record the responses"
    return made


def _objects(repo: Path) -> str:
    return subprocess.run(
        ["git", "count-objects", "-v"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


# -- the whole flow ---------------------------------------------------------------------
async def test_branch_commit_and_draft_pull_request_with_labels(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay, repo_snapshot: Snapshot
) -> None:
    replay = forge_replay("github", HAPPY)
    before, objects = repo_snapshot(repo), _objects(repo)
    result = await _backend(replay).open(_request(repo, tmp_path / "work"))

    assert replay.calls() == [f"{m} {p}" for m, p, _ in HAPPY]
    tree = replay.body("POST", f"{R}/git/trees")
    assert tree == {
        "base_tree": BASE_TREE,
        "tree": [
            {"path": "README.md", "mode": "100644", "type": "blob", "content": "Hello.\n"},
            {
                "path": "app/main.py",
                "mode": "100644",
                "type": "blob",
                "content": "import os\n\n\ndef main():\n    return os.sep\n",
            },
            {"path": "docs/new.md", "mode": "100644", "type": "blob", "content": "# New\nText.\n"},
            {"path": "old.txt", "mode": "100644", "type": "blob", "sha": None},
            {
                "path": "tools/run.sh",
                "mode": "100755",  # the executable bit is kept
                "type": "blob",
                "content": "#!/bin/sh\necho running\n",
            },
        ],
    }
    commit = replay.body("POST", f"{R}/git/commits")
    assert commit["parents"] == [BASE]
    assert commit["tree"] == TREE
    message = commit["message"]
    assert message.startswith("Tidy the code\n\nAs discussed.\n\nVariant: All 2 suggestions (all)")
    assert message.endswith(
        "Suggestion-Id: sug-1\nSuggestion-Id: sug-2\nApproved-by: alice\nApproved-by: bob\n"
    )
    assert replay.body("POST", f"{R}/git/refs") == {"ref": f"refs/heads/{BRANCH}", "sha": COMMIT}
    pull = replay.body("POST", f"{R}/pulls")
    assert {k: pull[k] for k in ("title", "head", "base", "draft")} == {
        "title": "Tidy the code",
        "head": BRANCH,
        "base": "main",
        "draft": True,
    }
    for text in ("Fix sug-1 (`sug-1`", "approved by alice", "**Approved by:** alice, bob"):
        assert text in pull["body"]
    assert "`plan-7`" in pull["body"] and "mallory" not in pull["body"]
    assert replay.body("POST", f"{R}/issues/42/labels") == {"labels": ["storykit", "automated"]}

    assert result.backend == "github"
    assert result.dry_run is False
    assert result.branch == BRANCH
    assert result.commit == COMMIT
    assert result.url == "https://github.com/octo/hello/pull/42"
    assert (result.number, result.repository) == (42, "octo/hello")  # to follow it
    assert result.diff == CODE + DOCS
    assert (result.plan_id, result.variant) == ("plan-7", "all")
    assert list(result.operations) == [f"{m} {p}" for m, p, _ in HAPPY]
    # Headers GitHub asks for; the token only ever in Authorization.
    first = replay.requests[0].headers
    assert first["authorization"] == f"Bearer {TOKEN}"
    assert first["accept"] == "application/vnd.github+json"
    assert first["x-github-api-version"] == "2022-11-28"
    assert TOKEN not in repr(result)
    # Nothing the user could notice locally: no file, index, branch, or new object.
    assert repo_snapshot(repo) == before
    assert _objects(repo) == objects
    assert list((tmp_path / "work").iterdir()) == []


async def test_a_base_branch_that_moved_on_is_fine_when_the_reviewed_base_is_in_it(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    script = [
        ("GET", R, "repo"),
        ("GET", f"{R}/git/ref/heads/main", "ref_main_moved"),
        ("GET", f"{R}/compare/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...{BASE}", "compare_behind"),
        *HAPPY[2:6],
    ]
    replay = forge_replay("github", script)
    result = await _backend(replay, {**ENV, "STORYKIT_GITHUB_LABELS": ""}).open(
        _request(repo, tmp_path / "work")
    )
    # The commit's parent is still the reviewed base, not the branch's new head.
    assert replay.body("POST", f"{R}/git/commits")["parents"] == [BASE]
    assert result.url == "https://github.com/octo/hello/pull/42"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("compare_diverged", "would carry unreviewed commits"),
        ("not_found", "is not on GitHub .*push it first"),
    ],
)
async def test_a_base_that_github_lacks_or_that_left_the_branch_is_refused(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay, answer: str, message: str
) -> None:
    replay = forge_replay(
        "github",
        [
            ("GET", R, "repo"),
            ("GET", f"{R}/git/ref/heads/main", "ref_main_moved"),
            ("GET", f"{R}/compare/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...{BASE}", answer),
        ],
    )
    with pytest.raises(Conflict, match=message):
        await _backend(replay).open(_request(repo, tmp_path / "work"))


@pytest.fixture
def logo_diff(forge_repo: Callable[..., Path]) -> str:
    """A binary diff adding ``logo.bin`` (``LOGO``) as git writes it, made in a copy of
    the repository with the same fixed history."""
    copy = forge_repo(FILES, name="copy", executable=EXEC)
    (copy / "logo.bin").write_bytes(LOGO)
    subprocess.run(["git", "add", "logo.bin"], cwd=copy, check=True)
    return subprocess.run(
        ["git", "diff", "--cached", "--binary"], cwd=copy, capture_output=True, text=True
    ).stdout


async def test_binary_files_are_uploaded_as_blobs(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay, logo_diff: str
) -> None:
    assert "GIT binary patch" in logo_diff
    logo_id = blob_id(LOGO)
    assert logo_id == "c8b49c8cd518e58491924bfc364ff26e01a85009"  # recorded in blob.json
    replay = forge_replay(
        "github",
        [
            ("GET", R, "repo"),
            ("GET", f"{R}/git/ref/heads/main", "ref_main"),
            ("POST", f"{R}/git/blobs", "blob"),
            ("POST", f"{R}/git/trees", "tree_binary"),
            *HAPPY[3:6],
        ],
    )
    await _backend(replay, {**ENV, "STORYKIT_GITHUB_LABELS": ""}).open(
        _request(repo, tmp_path / "work", logo_diff)
    )
    blob = replay.body("POST", f"{R}/git/blobs")
    assert blob["encoding"] == "base64"
    assert base64.b64decode(blob["content"]) == LOGO
    entries = replay.body("POST", f"{R}/git/trees")["tree"]
    assert entries == [{"path": "logo.bin", "mode": "100644", "type": "blob", "sha": logo_id}]


async def test_a_tree_github_stored_differently_stops_before_any_branch(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("github", [*HAPPY[:2], ("POST", f"{R}/git/trees", "tree_binary")])
    with pytest.raises(BackendError, match="differs from the reviewed tree"):
        await _backend(replay).open(_request(repo, tmp_path / "work"))


# -- errors from GitHub -----------------------------------------------------------------
async def test_a_bad_token_says_which_variable_to_set_and_never_shows_it(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("github", [("GET", R, "bad_credentials")])
    with pytest.raises(BackendError) as caught:
        await _backend(replay).open(_request(repo, tmp_path / "work"))
    detail = caught.value.detail
    assert detail.startswith("GitHub rejected the token: set GITHUB_TOKEN with repo scope")
    assert "Bad credentials" in detail
    assert TOKEN not in detail and TOKEN not in repr(caught.value)


async def test_an_unknown_repository_or_one_the_token_cannot_see(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("github", [("GET", R, "not_found")])
    with pytest.raises(BackendError, match="octo/hello does not exist or the token cannot see it"):
        await _backend(replay).open(_request(repo, tmp_path / "work"))


async def test_an_existing_branch_is_a_conflict_naming_its_pull_request(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay(
        "github",
        [*HAPPY[:4], ("POST", f"{R}/git/refs", "ref_exists"), ("GET", f"{R}/pulls", "pulls_open")],
    )
    with pytest.raises(Conflict) as caught:
        await _backend(replay).open(_request(repo, tmp_path / "work"))
    assert caught.value.detail == (
        f"branch {BRANCH!r} already exists on GitHub (octo/hello) (pull request #41:"
        " https://github.com/octo/hello/pull/41); choose another name or delete it"
    )
    assert replay.requests[-1].query == {"head": f"octo:{BRANCH}", "state": "open"}


async def test_an_existing_pull_request_is_a_conflict_and_the_new_branch_is_removed(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay(
        "github",
        [
            *HAPPY[:5],
            ("POST", f"{R}/pulls", "pull_exists"),
            ("GET", f"{R}/pulls", "pulls_open"),
            ("DELETE", f"{R}/git/refs/heads/{BRANCH}", "ref_deleted"),
        ],
    )
    with pytest.raises(Conflict) as caught:
        await _backend(replay).open(_request(repo, tmp_path / "work"))
    assert caught.value.detail == (
        f"a pull request already exists for octo:{BRANCH} (pull request #41:"
        f" https://github.com/octo/hello/pull/41); branch {BRANCH!r} was deleted again"
    )


async def test_a_failed_pull_request_says_when_the_branch_could_not_be_removed(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay(
        "github",
        [
            *HAPPY[:5],
            ("POST", f"{R}/pulls", "server_error"),
            ("DELETE", f"{R}/git/refs/heads/{BRANCH}", httpx.ConnectError("refused")),
        ],
    )
    with pytest.raises(BackendError) as caught:
        await _backend(replay).open(_request(repo, tmp_path / "work"))
    assert caught.value.detail.startswith("GitHub failed creating the pull request: HTTP 502")
    assert caught.value.detail.endswith(
        f"branch {BRANCH!r} was left on GitHub: delete it before trying again"
    )


async def test_labels_that_fail_leave_the_pull_request_and_a_warning(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("github", [*HAPPY[:6], ("POST", f"{R}/issues/42/labels", "forbidden")])
    result = await _backend(replay).open(_request(repo, tmp_path / "work"))
    assert result.url == "https://github.com/octo/hello/pull/42"
    assert result.operations[-1].startswith(
        "# warning: the pull request exists, but GitHub refused"
    )
    assert "Resource not accessible by personal access token" in result.operations[-1]


# -- rate limits and the network ----------------------------------------------------------
async def test_a_secondary_rate_limit_is_waited_out_as_github_asks(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    script = [HAPPY[0], HAPPY[1], ("POST", f"{R}/git/trees", "secondary_rate_limit"), *HAPPY[2:]]
    replay = forge_replay("github", script)
    sleeps = Sleeps()
    result = await _backend(replay, sleep=sleeps).open(_request(repo, tmp_path / "work"))
    assert sleeps.waits == [3.0]  # retry-after: 3
    assert result.operations[2:5] == (
        f"POST {R}/git/trees",
        "# rate limited (HTTP 403); waited 3s",
        f"POST {R}/git/trees",
    )


async def test_a_rate_limit_that_does_not_lift_says_when_to_try_again(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    limited = ("GET", R, "secondary_rate_limit")
    replay = forge_replay("github", [limited] * 4)
    sleeps = Sleeps()
    with pytest.raises(BackendError) as caught:
        await _backend(replay, sleep=sleeps).open(_request(repo, tmp_path / "work"))
    assert sleeps.waits == [3.0, 3.0, 4.0]  # bounded, backing off: max(retry-after, 2**n)
    assert "GitHub is rate limiting these requests (You have exceeded a secondary rate limit" in (
        caught.value.detail
    )
    assert caught.value.detail.endswith("try again after 2023-11-14 22:13:28 UTC (in 8s)")


async def test_an_exhausted_hourly_limit_is_not_waited_for(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("github", [("GET", R, "rate_limit_exhausted")])
    sleeps = Sleeps()
    with pytest.raises(BackendError, match=r"try again after 2023-11-14 22:43:20 UTC \(in 1800s\)"):
        await _backend(replay, sleep=sleeps).open(_request(repo, tmp_path / "work"))
    assert sleeps.waits == []


async def test_a_403_about_permissions_is_not_retried(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("github", [("GET", R, "forbidden")])
    with pytest.raises(BackendError, match="needs write access"):
        await _backend(replay).open(_request(repo, tmp_path / "work"))


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (httpx.ConnectTimeout("timed out"), "GitHub did not answer in time while reading the repo"),
        (httpx.ConnectError("refused"), "could not reach GitHub at https://api.github.com"),
    ],
)
async def test_network_failures_are_backend_errors(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay, error: Exception, message: str
) -> None:
    replay = forge_replay("github", [("GET", R, error)])
    with pytest.raises(BackendError, match=message):
        await _backend(replay).open(_request(repo, tmp_path / "work"))


# -- configuration and local checks -------------------------------------------------------
def test_registered_always_and_capabilities(tmp_path: Path) -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(pr_github_module, name="github")
    registry = Registry(pm, Settings.from_env({}, data_dir=tmp_path))
    backend = registry.pr_backends["github"].backend
    assert backend.capabilities == frozenset({"push", "pull_request", "draft", "labels"})


@pytest.mark.parametrize(
    ("env", "error", "message"),
    [
        ({}, NotConfigured, "needs GITHUB_TOKEN and STORYKIT_GITHUB_REPO"),
        ({"GITHUB_TOKEN": TOKEN}, NotConfigured, "needs STORYKIT_GITHUB_REPO: set GITHUB_TOKEN"),
        ({**ENV, "STORYKIT_GITHUB_REPO": "hello"}, Invalid, "expected owner/name"),
        ({**ENV, "STORYKIT_GITHUB_DRAFT": "maybe"}, Invalid, "STORYKIT_GITHUB_DRAFT='maybe'"),
        ({**ENV, "STORYKIT_GITHUB_API": "ftp://x"}, Invalid, "STORYKIT_GITHUB_API"),
    ],
)
async def test_missing_or_bad_settings_say_what_to_set(
    repo: Path,
    tmp_path: Path,
    forge_replay: MakeReplay,
    env: dict[str, str],
    error: type[Exception],
    message: str,
) -> None:
    replay = forge_replay("github", [])  # no request may be made
    with pytest.raises(error, match=message) as caught:
        await _backend(replay, env).open(_request(repo, tmp_path / "work"))
    assert TOKEN not in str(caught.value)


async def test_a_diff_that_does_not_apply_fails_before_any_request(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("github", [])
    stale = CODE.replace("-    return os.name", "-    return os.getcwd()")
    with pytest.raises(Conflict, match=r"does not apply to main \(f6b754d5e5bb\): .*app/main.py"):
        await _backend(replay).open(_request(repo, tmp_path / "work", stale))
    assert list((tmp_path / "work").iterdir()) == []


async def test_a_dry_run_makes_no_request(
    repo: Path, tmp_path: Path, forge_replay: MakeReplay
) -> None:
    replay = forge_replay("github", [])
    result = await _backend(replay).open(_request(repo, tmp_path / "work", dry_run=True))
    assert result.dry_run is True
    assert "# push: storykit/plan-7-all to GitHub octo/hello" in result.operations
