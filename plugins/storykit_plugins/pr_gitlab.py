"""PR backend ``gitlab``: the selected variant as a branch and a merge request on GitLab.

The commit's content is built locally from the reviewed base (see
:mod:`storykit_plugins._forge`), then through GitLab's REST API (v4):

1. ``GET /projects/:id``: the default branch (the MR's target unless
   ``STORYKIT_GITLAB_BASE`` names one), and a clear error if the project or the
   token is wrong;
2. ``GET /projects/:id/repository/branches/:target``: its head; if that is not the
   reviewed base, ``GET /projects/:id/repository/merge_base`` must show the
   reviewed base is an ancestor of it, so the MR carries only the reviewed change;
3. ``POST /projects/:id/repository/commits`` with ``start_sha`` = the reviewed
   base and one action per file (``create``, ``update``, ``delete``, and
   ``chmod`` when the executable bit changes; binary content base64-encoded).
   This creates the branch and its one commit in a single call; GitLab refuses
   a branch that already exists;
4. ``POST /projects/:id/merge_requests`` (title prefixed ``Draft:`` when
   ``STORYKIT_GITLAB_DRAFT``; labels from ``STORYKIT_GITLAB_LABELS`` in the same
   call). If it fails, the branch is deleted again so a retry starts afresh.

GitLab's commits API cannot write symbolic links or submodules; a variant that
changes one is refused before any request. Rate limits (429 with ``Retry-After``
or ``RateLimit-Reset``) are waited out a bounded number of times.

After the MR opened, storykit follows it (a :class:`~storykit.backends.PRTracker`):
from a project webhook's deliveries to ``POST /webhooks/gitlab`` (``Merge Request
Hook`` and ``Pipeline Hook``) once the core has checked their token
(:func:`webhook_updates`), or, where ``STORYKIT_GITLAB_WEBHOOK_SECRET`` is not set, by
polling ``GET /projects/:id/merge_requests/:iid`` (its ``head_pipeline``). The MR's
check is its pipeline: passing on ``success`` (or ``skipped``), failing on ``failed``
or ``canceled``, pending otherwise.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from storykit.backends import PRBackend, PRUpdate
from storykit.errors import Conflict, Invalid, StorykitError
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

__all__ = ["DEFAULT_API", "GitLabBackend", "storykit_register_pr_backends", "webhook_updates"]

DEFAULT_API = "https://gitlab.com/api/v4"
_PROJECT = re.compile(r"^(?:\d+|[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+)$")
_HOW = (
    "set GITLAB_TOKEN to a token with api scope (Developer role or higher) and"
    " STORYKIT_GITLAB_PROJECT to the project's path (group/name) or numeric id"
)
_EXISTING_MR = re.compile(r"!(\d+)")


def _actions(change: FileChange) -> list[dict[str, Any]]:
    """The commit actions for one changed path (GitLab's ``actions[]``)."""
    if "120000" in (change.mode, change.old_mode) or "160000" in (change.mode, change.old_mode):
        raise Invalid(
            f"{change.path}: GitLab's commits API cannot write symbolic links or submodules;"
            " use the git backend with a GitLab remote for this variant"
        )
    if change.content is None:
        return [{"action": "delete", "file_path": change.path}]
    out: list[dict[str, Any]] = []
    if change.oid != change.old_oid:  # not for a change of the executable bit alone
        action: dict[str, Any] = {
            "action": "create" if change.status == "A" else "update",
            "file_path": change.path,
        }
        text = change.text
        if text is not None:
            action.update(content=text, encoding="text")
        else:
            action.update(content=base64.b64encode(change.content).decode(), encoding="base64")
        out.append(action)
    executable = change.mode == "100755"
    was_executable = change.old_mode == "100755"  # "000000" for a new file
    if executable != was_executable:
        out.append({"action": "chmod", "file_path": change.path, "execute_filemode": executable})
    return out


class _Run(ForgeRun):
    """One merge request: the calls in order, and what each failure means."""

    home_what = "reading the project"

    @property
    def home(self) -> str:
        return f"/projects/{quote(self.config.target, safe='')}"

    @property
    def branch_path(self) -> str:
        return self._branch_path(self.local.branch)

    def _branch_path(self, branch: str) -> str:
        return f"{self.home}/repository/branches/{quote(branch, safe='')}"

    async def open(self) -> PRResult:
        # Before any request: a change GitLab's commits API cannot write is refused offline.
        actions = [action for change in self.local.changes for action in _actions(change)]
        target = await self._target_branch()
        commit = await self._create_commit(actions)
        mr = await self._on_new_branch(lambda: self._create_merge_request(target))
        return self._result(
            str(commit.get("id") or ""),
            str(mr.get("web_url") or ""),
            number=int(mr["iid"]) if isinstance(mr.get("iid"), int) else None,
            # Webhooks name the project by its numeric id, whatever STORYKIT_GITLAB_PROJECT says.
            repository=str(mr.get("project_id") or self.config.target),
        )

    # -- steps -----------------------------------------------------------------------
    async def _branch_head(self, branch: str) -> str:
        what = f"reading branch {branch!r}"
        response = await self.http.call("GET", self._branch_path(branch), what=what)
        if response.status_code == 404 and "branch" in forge_message(response).lower():
            raise Invalid(
                f"{self.config.target} has no branch {branch!r} to open the merge request"
                " against (STORYKIT_GITLAB_BASE)"
            )
        found = self._ok(response, what)
        return str((found.get("commit") or {}).get("id") or "")

    async def _check_ancestor(self, head: str, branch: str) -> None:
        base = self.local.base
        what = "comparing the reviewed base with the target branch"
        response = await self.http.call(
            "GET",
            f"{self.home}/repository/merge_base",
            what=what,
            params=[("refs[]", head), ("refs[]", base)],
        )
        if response.status_code in (400, 404):
            raise Conflict(
                f"the reviewed base commit {base[:12]} is not on GitLab"
                f" ({self.config.target}); push it first, then open the merge request again"
            )
        if self._ok(response, what).get("id") != base:
            raise Conflict(
                f"the reviewed base commit {base[:12]} is not part of {branch!r} on GitLab;"
                f" a merge request into {branch!r} would carry unreviewed commits."
                " Rebase the suggestions on it or set STORYKIT_GITLAB_BASE"
            )

    async def _create_commit(self, actions: list[dict[str, Any]]) -> dict[str, Any]:
        branch = self.local.branch
        what = f"creating branch {branch!r} and its commit"
        response = await self.http.call(
            "POST",
            f"{self.home}/repository/commits",
            what=what,
            json={
                "branch": branch,
                "start_sha": self.local.base,
                "commit_message": self.local.message,
                "actions": actions,
            },
        )
        if response.status_code == 400 and "already exists" in forge_message(response):
            raise Conflict(
                f"branch {branch!r} already exists on GitLab ({self.config.target});"
                " choose another name or delete it"
            )
        return self._ok(response, what)

    async def _create_merge_request(self, target: str) -> dict[str, Any]:
        what = "creating the merge request"
        title = pr_title(self.request)
        body: dict[str, Any] = {
            "source_branch": self.local.branch,
            "target_branch": target,
            "title": f"Draft: {title}" if self.config.draft else title,
            "description": pr_body(self.request),
        }
        if self.config.labels:
            body["labels"] = ",".join(self.config.labels)
        response = await self.http.call("POST", f"{self.home}/merge_requests", what=what, json=body)
        if response.status_code == 409:
            said = forge_message(response)
            number = _EXISTING_MR.search(said)
            existing = await self._existing_merge_request(number.group(1) if number else None)
            raise Conflict(
                f"a merge request already exists for branch {self.local.branch!r}{existing}"
            )
        return self._ok(response, what)

    async def _existing_merge_request(self, iid: str | None) -> str:
        """`` (!12: <url>)`` for the open MR from the branch, if GitLab finds it."""
        try:
            response = await self.http.call(
                "GET",
                f"{self.home}/merge_requests",
                what="looking for the existing merge request",
                params={"source_branch": self.local.branch, "state": "opened"},
            )
        except StorykitError:
            response = None  # only decorates the conflict being reported
        found = response.json() if response is not None and response.status_code == 200 else []
        if isinstance(found, list) and found and isinstance(found[0], dict):
            return f" (!{found[0].get('iid')}: {found[0].get('web_url')})"
        return f" (!{iid})" if iid else ""

    # -- responses -------------------------------------------------------------------
    def _explain(self, status: int, said: str, what: str) -> str | None:
        project = self.config.target
        if status == 401:
            return (
                "GitLab rejected the token: set GITLAB_TOKEN to a token with api scope"
                f" (GitLab said: {said})"
            )
        if status == 404:
            return (
                f"GitLab answered 404 while {what} ({said}): the project {project} does not"
                " exist or the token cannot see it; check STORYKIT_GITLAB_PROJECT and the"
                " token's access"
            )
        if status == 403:
            return (
                f"GitLab refused {what} ({said}): the token needs api scope and at least"
                f" the Developer role in {project}"
            )
        return None


# -- following the merge request -----------------------------------------------------------
_STATES = {
    "opened": PRState.OPEN,
    "locked": PRState.OPEN,  # briefly, while GitLab merges it
    "merged": PRState.MERGED,
    "closed": PRState.CLOSED,
}
_PIPELINE_PASSING = frozenset({"success", "skipped"})
_PIPELINE_FAILING = frozenset({"failed", "canceled"})


def _pipeline(status: object) -> Checks:
    if status in _PIPELINE_PASSING:
        return Checks.PASSING
    if status in _PIPELINE_FAILING:
        return Checks.FAILING
    return Checks.PENDING  # created, pending, running, manual, scheduled, preparing…


def _mr_update(project: str, mr: Mapping[str, Any]) -> PRUpdate:
    """A merge request (a hook's ``object_attributes``, or ``GET …/merge_requests/:iid``)."""
    last = mapping(mr.get("last_commit"))
    head = str(mr.get("sha") or last.get("id") or "") or None
    state = _STATES.get(str(mr.get("state") or ""))
    return PRUpdate(
        repository=project,
        number=positive_number(mr.get("iid"), "merge request iid"),
        state=state,
        head=head,
        at=forge_time(mr.get("updated_at")),
        merged_at=forge_time(mr.get("merged_at")) if state is PRState.MERGED else None,
        url=str(mr.get("url") or mr.get("web_url") or "") or None,
    )


def _project_id(payload: Mapping[str, Any], *objects: Mapping[str, Any]) -> str:
    for item in objects:
        if item.get("target_project_id"):
            return str(item["target_project_id"])
    project = payload.get("project")
    return str(project.get("id") or "") if isinstance(project, Mapping) else ""


def webhook_updates(event: str, payload: Mapping[str, Any]) -> list[PRUpdate]:
    """What one GitLab delivery says about merge requests, as GitLab documents its hooks:

    - ``Merge Request Hook``: the state (``opened``, ``merged``, ``closed``), the head
      (``last_commit``) and GitLab's ``updated_at``;
    - ``Pipeline Hook`` of a merge request's pipeline (it names the ``merge_request``):
      the pipeline's state for its ``sha``;
    - anything else: nothing.
    """
    kind = payload.get("object_kind")
    attributes = payload.get("object_attributes")
    if not isinstance(attributes, Mapping):
        return []
    if kind == "merge_request":
        project = _project_id(payload, attributes)
        return [_mr_update(project, attributes)] if project else []
    if kind == "pipeline":
        mr = payload.get("merge_request")
        if not isinstance(mr, Mapping):
            return []  # a branch's pipeline, not a merge request's
        project = _project_id(payload, mr)
        if not project:
            return []
        return [
            PRUpdate(
                repository=project,
                number=positive_number(mr.get("iid"), "merge_request.iid"),
                checks={"pipeline": _pipeline(attributes.get("status"))},
                checks_head=str(attributes.get("sha") or "") or None,
            )
        ]
    return []


class GitLabBackend(ForgeBackend):
    name = "gitlab"
    webhook = "gitlab"
    forge = "GitLab"
    auth_setting = "GITLAB_TOKEN"
    target_setting = "STORYKIT_GITLAB_PROJECT"
    default_api = DEFAULT_API
    how = _HOW
    run_class = _Run

    def _check_target(self, target: str) -> None:
        if not _PROJECT.match(target) or target.endswith(".git"):
            raise Invalid(
                f"STORYKIT_GITLAB_PROJECT={target!r}: expected a path like group/name"
                " or a numeric project id"
            )

    def _headers(self, config: ForgeConfig) -> dict[str, str]:
        return {"PRIVATE-TOKEN": config.token, "User-Agent": "storykit"}

    def webhook_updates(self, event: str, payload: Mapping[str, Any]) -> list[PRUpdate]:
        return webhook_updates(event, payload)

    async def _poll(self, http: ForgeHTTP, pr: PullRequest) -> PRUpdate:
        mr = await self._get(
            http,
            f"/projects/{quote(pr.repository, safe='')}/merge_requests/{pr.number}",
            what=f"reading merge request !{pr.number}",
        )
        update = _mr_update(pr.repository, mr)
        pipeline = mr.get("head_pipeline")
        if not isinstance(pipeline, Mapping):
            return dataclasses.replace(update, all_checks=True)  # none (yet)
        return dataclasses.replace(
            update,
            checks={"pipeline": _pipeline(pipeline.get("status"))},
            checks_head=str(pipeline.get("sha") or "") or update.head,
            all_checks=True,
        )


@hookimpl
def storykit_register_pr_backends(
    register: Callable[[PRBackend], None], settings: Settings
) -> None:
    """Register the ``gitlab`` backend (always; it says what to set when it is not configured)."""
    register(GitLabBackend.from_settings(settings))
