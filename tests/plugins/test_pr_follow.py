"""The ``github`` and ``gitlab`` backends following the pull requests they opened: webhook
deliveries shaped as each forge documents them (recorded/<forge>/webhooks/), and polls
answered by recorded REST responses (through ``httpx.MockTransport``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from storykit.backends import PRTracker, PRUpdate
from storykit.errors import BackendError, Invalid
from storykit.models import Checks, PRState, PullRequest
from storykit_plugins import pr_github, pr_gitlab
from storykit_plugins.pr_github import GitHubBackend
from storykit_plugins.pr_gitlab import GitLabBackend

pytestmark = pytest.mark.anyio

RECORDED = Path(__file__).parent / "recorded"
HEAD = "7638417db6d59f3c431d3e1f261cc637155684cd"
NEW_HEAD = "9d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a69788796"
GITLAB_HEAD = "2f8c1e0d9b7a6c5e4d3f2a1b0c9d8e7f6a5b4c3d"
MERGED_AT = datetime(2023, 11, 15, 9, 0, tzinfo=UTC)


def hook(forge: str, name: str) -> tuple[str, dict[str, Any]]:
    """A recorded delivery: its event header and its JSON payload."""
    recorded = json.loads((RECORDED / forge / "webhooks" / f"{name}.json").read_text())
    header = "X-GitHub-Event" if forge == "github" else "X-Gitlab-Event"
    return recorded["headers"][header], recorded["body"]


def test_both_backends_follow_their_pull_requests() -> None:
    for backend in (GitHubBackend({}), GitLabBackend({})):
        assert isinstance(backend, PRTracker)
        assert backend.webhook == backend.name


def test_github_pull_request_deliveries() -> None:
    [merged] = pr_github.webhook_updates(*hook("github", "pull_request_closed_merged"))
    assert merged == PRUpdate(
        repository="octo/hello",
        number=42,
        state=PRState.MERGED,
        head=HEAD,
        at=MERGED_AT,
        merged_at=MERGED_AT,
        url="https://github.com/octo/hello/pull/42",
    )
    [closed] = pr_github.webhook_updates(*hook("github", "pull_request_closed"))
    assert (closed.state, closed.merged_at) == (PRState.CLOSED, None)
    [pushed] = pr_github.webhook_updates(*hook("github", "pull_request_synchronize"))
    assert (pushed.state, pushed.head) == (PRState.OPEN, NEW_HEAD)


def test_github_check_deliveries() -> None:
    [suite] = pr_github.webhook_updates(*hook("github", "check_suite_completed_failure"))
    assert suite == PRUpdate(
        repository="octo/hello",
        number=42,
        checks={"suite:github-actions": Checks.FAILING},
        checks_head=HEAD,
    )
    [run] = pr_github.webhook_updates(*hook("github", "check_run_completed_success"))
    assert (run.number, dict(run.checks), run.checks_head) == (
        42,
        {"test (3.12)": Checks.PASSING},
        HEAD,
    )
    event, payload = hook("github", "check_run_completed_success")
    payload["check_run"] |= {"status": "in_progress", "conclusion": None}
    [running] = pr_github.webhook_updates(event, payload)
    assert dict(running.checks) == {"test (3.12)": Checks.PENDING}


def test_github_events_it_does_not_follow_say_nothing() -> None:
    assert pr_github.webhook_updates(*hook("github", "ping")) == []
    event, payload = hook("github", "pull_request_closed")
    assert pr_github.webhook_updates("push", payload) == []
    payload["pull_request"]["number"] = "42"
    with pytest.raises(Invalid, match=r"pull_request\.number is not a positive whole number"):
        pr_github.webhook_updates(event, payload)


def test_gitlab_deliveries() -> None:
    [merged] = pr_gitlab.webhook_updates(*hook("gitlab", "merge_request_merged"))
    assert merged == PRUpdate(
        repository="4",
        number=7,
        state=PRState.MERGED,
        head=GITLAB_HEAD,
        at=MERGED_AT,
        url="https://gitlab.com/octo/hello/-/merge_requests/7",
    )
    [pipeline] = pr_gitlab.webhook_updates(*hook("gitlab", "pipeline_failed"))
    assert pipeline == PRUpdate(
        repository="4",
        number=7,
        checks={"pipeline": Checks.FAILING},
        checks_head=GITLAB_HEAD,
    )
    event, payload = hook("gitlab", "pipeline_failed")
    del payload["merge_request"]  # a branch's pipeline: about no merge request
    assert pr_gitlab.webhook_updates(event, payload) == []


def _pr(backend: str, repository: str, number: int, head: str) -> PullRequest:
    return PullRequest(
        backend=backend,
        repository=repository,
        number=number,
        url="",
        branch="storykit/plan-7-all",
        variant="all",
        head=head,
    )


GITHUB_ENV = {"GITHUB_TOKEN": "ghp_SECRETtoken0123456789", "STORYKIT_GITHUB_REPO": "octo/hello"}
GITLAB_ENV = {"GITLAB_TOKEN": "glpat-SECRETtoken012345", "STORYKIT_GITLAB_PROJECT": "octo/hello"}


async def test_github_poll_reads_the_pull_request_and_its_head_checks(
    forge_replay: Callable[..., Any],
) -> None:
    replay = forge_replay(
        "github",
        [
            ("GET", "/repos/octo/hello/pulls/42", "pull_merged"),
            ("GET", f"/repos/octo/hello/commits/{HEAD}/check-runs", "check_runs"),
        ],
    )
    backend = GitHubBackend(GITHUB_ENV, client=replay.client)
    update = await backend.poll(_pr("github", "octo/hello", 42, HEAD))
    assert (update.state, update.head, update.merged_at) == (PRState.MERGED, HEAD, MERGED_AT)
    assert update.all_checks and update.checks_head == HEAD
    assert dict(update.checks) == {
        "test (3.12)": Checks.PASSING,
        "lint": Checks.PASSING,  # neutral
        "docs": Checks.PENDING,  # in progress
    }
    assert replay.requests[1].query == {"per_page": "100"}
    assert replay.requests[0].headers["authorization"] == "Bearer ghp_SECRETtoken0123456789"


async def test_a_failing_poll_says_what_the_forge_answered(
    forge_replay: Callable[..., Any],
) -> None:
    replay = forge_replay("github", [("GET", "/repos/octo/hello/pulls/42", "server_error")])
    backend = GitHubBackend(GITHUB_ENV, client=replay.client)
    with pytest.raises(BackendError, match="reading pull request #42: HTTP 5") as caught:
        await backend.poll(_pr("github", "octo/hello", 42, HEAD))
    assert "ghp_" not in caught.value.detail


async def test_gitlab_poll_reads_the_merge_request_and_its_pipeline(
    forge_replay: Callable[..., Any],
) -> None:
    replay = forge_replay("gitlab", [("GET", "/api/v4/projects/4/merge_requests/7", "mr_merged")])
    backend = GitLabBackend(GITLAB_ENV, client=replay.client)
    update = await backend.poll(_pr("gitlab", "4", 7, GITLAB_HEAD))
    assert (update.state, update.head, update.merged_at) == (
        PRState.MERGED,
        GITLAB_HEAD,
        MERGED_AT,
    )
    assert (dict(update.checks), update.checks_head, update.all_checks) == (
        {"pipeline": Checks.PASSING},
        GITLAB_HEAD,
        True,
    )
    assert replay.requests[0].headers["private-token"] == "glpat-SECRETtoken012345"
