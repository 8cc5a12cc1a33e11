"""PR backend ``github``: the selected variant as a branch and a pull request on GitHub.

The commit's content is built locally from the reviewed base (see
:mod:`storykit_plugins._forge`); nothing is pushed with git. Through GitHub's
REST API it then:

1. ``GET /repos/{repo}``: the default branch (the PR's base unless
   ``STORYKIT_GITHUB_BASE`` names one), and a clear error if the repository or
   the token is wrong;
2. ``GET /repos/{repo}/git/ref/heads/{base}``: the base branch's head; if that is
   not the reviewed base commit, ``GET /repos/{repo}/compare/{head}...{base}``
   must say the reviewed base is behind it (an ancestor), so the PR carries
   only the reviewed change;
3. ``POST /repos/{repo}/git/blobs`` for each binary file (text goes inline in the
   tree), ``POST /repos/{repo}/git/trees`` on top of the base's tree — GitHub's
   tree id must equal the one built locally, which proves every byte arrived
   as reviewed — and ``POST /repos/{repo}/git/commits`` with the base as parent;
4. ``POST /repos/{repo}/git/refs``: the new branch (never overwrites one);
5. ``POST /repos/{repo}/pulls`` (draft when ``STORYKIT_GITHUB_DRAFT``); if that
   fails, the branch is deleted again so a retry starts from the same state;
6. ``POST /repos/{repo}/issues/{number}/labels`` when ``STORYKIT_GITHUB_LABELS``
   is set. The PR exists by then, so a failure here is reported as a
   ``# warning:`` line in the operations rather than as an error.

Rate limits (403/429 with ``Retry-After`` or ``x-ratelimit-*``) are waited out a
bounded number of times; otherwise every failure is a storykit error that says
what to fix, and the token never appears in one.

After the PR opened, storykit follows it (a :class:`~storykit.backends.PRTracker`):

- from the deliveries of a repository webhook to ``POST /webhooks/github`` (events
  ``pull_request``, ``check_suite``, ``check_run``), once the core has checked their
  signature: :func:`webhook_updates`;
- where ``STORYKIT_GITHUB_WEBHOOK_SECRET`` is not set, by polling
  ``GET /repos/{repo}/pulls/{number}`` and ``GET /repos/{repo}/commits/{head}/check-runs``.

A check run or suite passes when it completed with ``success``, ``neutral`` or
``skipped``, fails when it completed otherwise, and is pending until it completes.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from storykit.backends import PRBackend, PRUpdate
from storykit.errors import BackendError, Conflict, Invalid, StorykitError
from storykit.hookspecs import hookimpl
from storykit.models import Checks, PRResult, PRState, PullRequest
from storykit.settings import Settings
from storykit_plugins._forge import (
    FileChange,
    ForgeHTTP,
    forge_message,
    forge_time,
    pr_body,
    pr_title,
)
from storykit_plugins._forge_base import (
    ForgeBackend,
    ForgeConfig,
    ForgeRun,
    mapping,
    positive_number,
)

__all__ = ["DEFAULT_API", "GitHubBackend", "storykit_register_pr_backends", "webhook_updates"]

DEFAULT_API = "https://api.github.com"
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+$")
_HOW = (
    "set GITHUB_TOKEN to a token with repo scope (fine-grained: contents and pull"
    " requests, read and write) and STORYKIT_GITHUB_REPO to owner/name"
)


class _Run(ForgeRun):
    """One PR: the calls in order, and what each failure means."""

    home_what = "reading the repository"
    deleted = frozenset({204, 404, 422})

    @property
    def home(self) -> str:
        return f"/repos/{self.config.target}"

    @property
    def branch_path(self) -> str:
        return f"{self.home}/git/refs/heads/{quote(self.local.branch, safe='/')}"

    async def open(self) -> PRResult:
        local = self.local
        base_branch = await self._target_branch()
        entries = [await self._tree_entry(change) for change in local.changes]
        tree = await self._json(
            "POST",
            f"{self.home}/git/trees",
            what="creating the tree",
            json={"base_tree": local.base_tree, "tree": entries},
        )
        if tree.get("sha") != local.tree:
            raise BackendError(
                f"GitHub's tree {tree.get('sha')} differs from the reviewed tree {local.tree};"
                " nothing was created"
            )
        commit = await self._json(
            "POST",
            f"{self.home}/git/commits",
            what="creating the commit",
            json={"message": local.message, "tree": local.tree, "parents": [local.base]},
        )
        sha = str(commit.get("sha") or "")
        await self._create_branch(sha)
        pull = await self._on_new_branch(lambda: self._create_pull(base_branch))
        number = int(pull["number"])
        if self.config.labels:
            await self._add_labels(number)
        return self._result(
            sha,
            str(pull.get("html_url") or ""),
            number=number,
            repository=self.config.target.lower(),  # as webhooks name it, case aside
        )

    # -- steps -----------------------------------------------------------------------
    async def _branch_head(self, branch: str) -> str:
        path = f"{self.home}/git/ref/heads/{quote(branch, safe='/')}"
        what = f"reading branch {branch!r}"
        response = await self.http.call("GET", path, what=what)
        if response.status_code == 404:
            raise Invalid(
                f"{self.config.target} has no branch {branch!r} to open the pull request against"
                " (STORYKIT_GITHUB_BASE)"
            )
        ref = self._ok(response, what)
        return str(ref.get("object", {}).get("sha") or "")

    async def _check_ancestor(self, head: str, branch: str) -> None:
        base = self.local.base
        what = "comparing the reviewed base with the target branch"
        response = await self.http.call("GET", f"{self.home}/compare/{head}...{base}", what=what)
        if response.status_code in (404, 422):
            raise Conflict(
                f"the reviewed base commit {base[:12]} is not on GitHub ({self.config.target});"
                " push it first (for example, push your branch), then open the PR again"
            )
        status = self._ok(response, what).get("status")
        if status not in ("behind", "identical"):
            raise Conflict(
                f"the reviewed base commit {base[:12]} is not part of {branch!r} on GitHub"
                f" ({status}); a pull request against {branch!r} would carry unreviewed commits."
                " Rebase the suggestions on it or set STORYKIT_GITHUB_BASE"
            )

    async def _tree_entry(self, change: FileChange) -> dict[str, Any]:
        if change.content is None:  # deleted: a null sha removes the path
            kind = "commit" if change.old_mode == "160000" else "blob"
            return {"path": change.path, "mode": change.old_mode, "type": kind, "sha": None}
        if change.mode == "160000":  # a submodule: the commit id is the content
            return {"path": change.path, "mode": change.mode, "type": "commit", "sha": change.oid}
        text = change.text
        entry: dict[str, Any] = {"path": change.path, "mode": change.mode, "type": "blob"}
        if text is not None:
            entry["content"] = text  # inline: one request per tree, not one per file
            return entry
        blob = await self._json(
            "POST",
            f"{self.home}/git/blobs",
            what=f"uploading {change.path}",
            json={"content": base64.b64encode(change.content).decode(), "encoding": "base64"},
        )
        if blob.get("sha") != change.oid:
            raise BackendError(
                f"GitHub stored {change.path} as {blob.get('sha')}, not {change.oid}"
            )
        entry["sha"] = change.oid
        return entry

    async def _create_branch(self, sha: str) -> None:
        what = f"creating branch {self.local.branch!r}"
        response = await self.http.call(
            "POST",
            f"{self.home}/git/refs",
            what=what,
            json={"ref": f"refs/heads/{self.local.branch}", "sha": sha},
        )
        if response.status_code == 422 and "already exists" in forge_message(response):
            existing = await self._existing_pull()
            raise Conflict(
                f"branch {self.local.branch!r} already exists on GitHub ({self.config.target})"
                f"{existing}; choose another name or delete it"
            )
        self._ok(response, what)

    async def _create_pull(self, base_branch: str) -> dict[str, Any]:
        what = "creating the pull request"
        response = await self.http.call(
            "POST",
            f"{self.home}/pulls",
            what=what,
            json={
                "title": pr_title(self.request),
                "head": self.local.branch,
                "base": base_branch,
                "body": pr_body(self.request),
                "draft": self.config.draft,
            },
        )
        said = forge_message(response)
        if response.status_code == 422 and "pull request already exists" in said.lower():
            owner = self.config.target.split("/")[0]
            existing = await self._existing_pull()
            raise Conflict(
                f"a pull request already exists for {owner}:{self.local.branch}{existing}"
            )
        return self._ok(response, what)

    async def _add_labels(self, number: int) -> None:
        what = "adding labels"
        try:
            response = await self.http.call(
                "POST",
                f"{self.home}/issues/{number}/labels",
                what=what,
                json={"labels": list(self.config.labels)},
            )
            if not response.is_success:  # the answer is the labels: nothing to read
                self._fail(response, what)
        except StorykitError as exc:
            self.http.operations.append(f"# warning: the pull request exists, but {exc.detail}")

    async def _existing_pull(self) -> str:
        """`` (pull request #12: <url>)`` for the open PR from the branch, if GitHub finds one."""
        owner = self.config.target.split("/")[0]
        try:
            response = await self.http.call(
                "GET",
                f"{self.home}/pulls",
                what="looking for the existing pull request",
                params={"head": f"{owner}:{self.local.branch}", "state": "open"},
            )
        except StorykitError:
            return ""  # only decorates the conflict being reported
        pulls = response.json() if response.status_code == 200 else []
        if isinstance(pulls, list) and pulls and isinstance(pulls[0], dict):
            return f" (pull request #{pulls[0].get('number')}: {pulls[0].get('html_url')})"
        return ""

    # -- responses -------------------------------------------------------------------
    def _explain(self, status: int, said: str, what: str) -> str | None:
        repo = self.config.target
        if status == 401:
            return (
                f"GitHub rejected the token: set GITHUB_TOKEN with repo scope (GitHub said: {said})"
            )
        if status == 404:
            return (
                f"GitHub answered 404 Not Found while {what}: the repository {repo} does not"
                " exist or the token cannot see it; check STORYKIT_GITHUB_REPO and the token's"
                " access"
            )
        if status == 403:
            return (
                f"GitHub refused {what} ({said}): the token needs write access to the contents"
                f" and pull requests of {repo}"
            )
        return None


# -- following the pull request ----------------------------------------------------------
_PASSING = frozenset({"success", "neutral", "skipped"})


def _check(status: object, conclusion: object) -> Checks:
    if status != "completed":
        return Checks.PENDING  # queued, in_progress, requested, waiting, pending
    return Checks.PASSING if conclusion in _PASSING else Checks.FAILING


def _pull_update(repository: str, pull: Mapping[str, Any]) -> PRUpdate:
    """A pull request object (a ``pull_request`` delivery's, or ``GET …/pulls/{n}``)."""
    merged = bool(pull.get("merged")) or bool(pull.get("merged_at"))
    state = (
        PRState.MERGED
        if merged
        else PRState.CLOSED
        if pull.get("state") == "closed"
        else PRState.OPEN
    )
    head = mapping(pull.get("head"))
    return PRUpdate(
        repository=repository,
        number=positive_number(pull.get("number"), "pull_request.number"),
        state=state,
        head=str(head.get("sha") or "") or None,
        at=forge_time(pull.get("updated_at")),
        merged_at=forge_time(pull.get("merged_at")),
        url=str(pull.get("html_url") or "") or None,
    )


def webhook_updates(event: str, payload: Mapping[str, Any]) -> list[PRUpdate]:
    """What one GitHub delivery says about pull requests, as GitHub documents its payloads:

    - ``pull_request`` (opened, closed with ``merged``, reopened, synchronize: a new head…):
      the state, head and GitHub's ``updated_at``;
    - ``check_suite`` and ``check_run``: one check's state for its ``head_sha``, for each
      pull request in its ``pull_requests``;
    - anything else (``ping``, ``push``…): nothing.
    """
    repo = payload.get("repository")
    repository = str(repo.get("full_name") or "").lower() if isinstance(repo, Mapping) else ""
    if not repository:
        return []
    if event == "pull_request":
        pull = payload.get("pull_request")
        return [_pull_update(repository, pull)] if isinstance(pull, Mapping) else []
    if event not in ("check_suite", "check_run"):
        return []
    item = payload.get(event)
    if not isinstance(item, Mapping):
        return []
    if event == "check_suite":
        app = mapping(item.get("app"))
        name = f"suite:{app.get('slug') or app.get('name') or item.get('id')}"
    else:
        name = str(item.get("name") or item.get("id"))
    state = _check(item.get("status"), item.get("conclusion"))
    head = str(item.get("head_sha") or "") or None
    pulls = item.get("pull_requests") or []
    return [
        PRUpdate(
            repository=repository,
            number=positive_number(p.get("number"), f"{event}.pull_requests[].number"),
            checks={name: state},
            checks_head=head,
        )
        for p in pulls
        if isinstance(p, Mapping)
    ]


class GitHubBackend(ForgeBackend):
    name = "github"
    webhook = "github"
    forge = "GitHub"
    auth_setting = "GITHUB_TOKEN"
    target_setting = "STORYKIT_GITHUB_REPO"
    default_api = DEFAULT_API
    how = _HOW
    run_class = _Run

    def _check_target(self, target: str) -> None:
        if not _REPO.match(target) or target.endswith(".git"):
            raise Invalid(f"STORYKIT_GITHUB_REPO={target!r}: expected owner/name, like octo/hello")

    def _headers(self, config: ForgeConfig) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {config.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "storykit",
        }

    def webhook_updates(self, event: str, payload: Mapping[str, Any]) -> list[PRUpdate]:
        return webhook_updates(event, payload)

    async def _poll(self, http: ForgeHTTP, pr: PullRequest) -> PRUpdate:
        home = f"/repos/{pr.repository}"
        pull = await self._get(
            http, f"{home}/pulls/{pr.number}", what=f"reading pull request #{pr.number}"
        )
        update = _pull_update(pr.repository, pull)
        head = update.head or pr.head
        if not head:
            return update
        found = await self._get(
            http,
            f"{home}/commits/{quote(head, safe='')}/check-runs",
            what=f"reading the checks of {head[:12]}",
            params={"per_page": "100"},
        )
        runs = found.get("check_runs") if isinstance(found.get("check_runs"), list) else []
        checks = {
            str(run.get("name") or run.get("id")): _check(run.get("status"), run.get("conclusion"))
            for run in runs
            if isinstance(run, Mapping)
        }
        return dataclasses.replace(update, checks=checks, checks_head=head, all_checks=True)


@hookimpl
def storykit_register_pr_backends(
    register: Callable[[PRBackend], None], settings: Settings
) -> None:
    """Register the ``github`` backend (always; it says what to set when it is not configured)."""
    register(GitHubBackend.from_settings(settings))
