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
"""

from __future__ import annotations

import base64
import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn
from urllib.parse import quote

import anyio
import httpx

from storykit.backends import PRBackend, PRRequest
from storykit.errors import BackendError, Conflict, Invalid, NotConfigured, StorykitError
from storykit.hookspecs import hookimpl
from storykit.models import PRResult
from storykit.settings import Settings
from storykit_plugins._forge import (
    FileChange,
    ForgeHTTP,
    LocalCommit,
    Sleep,
    api_base,
    build_local_commit,
    flag,
    forge_client,
    forge_message,
    json_object,
    pr_body,
    pr_title,
    split_csv,
)
from storykit_plugins.pr_dryrun import preview

__all__ = ["DEFAULT_API", "GitLabBackend", "GitLabConfig", "storykit_register_pr_backends"]

DEFAULT_API = "https://gitlab.com/api/v4"
_PROJECT = re.compile(r"^(?:\d+|[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+)$")
_HOW = (
    "set GITLAB_TOKEN to a token with api scope (Developer role or higher) and"
    " STORYKIT_GITLAB_PROJECT to the project's path (group/name) or numeric id"
)
_EXISTING_MR = re.compile(r"!(\d+)")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class GitLabConfig:
    token: str = dataclasses.field(repr=False)
    project: str
    api: str = DEFAULT_API
    base: str | None = None
    draft: bool = False
    labels: tuple[str, ...] = ()

    @classmethod
    def read(cls, get: Callable[[str], str | None]) -> GitLabConfig:
        """From the environment; :class:`NotConfigured` says what to set."""
        token = (get("GITLAB_TOKEN") or "").strip()
        project = (get("STORYKIT_GITLAB_PROJECT") or "").strip().strip("/")
        wanted = (("GITLAB_TOKEN", token), ("STORYKIT_GITLAB_PROJECT", project))
        missing = [name for name, value in wanted if not value]
        if missing:
            raise NotConfigured(f"the gitlab PR backend needs {' and '.join(missing)}: {_HOW}")
        if not _PROJECT.match(project) or project.endswith(".git"):
            raise Invalid(
                f"STORYKIT_GITLAB_PROJECT={project!r}: expected a path like group/name"
                " or a numeric project id"
            )
        return cls(
            token=token,
            project=project,
            api=api_base(get("STORYKIT_GITLAB_API"), DEFAULT_API, "STORYKIT_GITLAB_API"),
            base=(get("STORYKIT_GITLAB_BASE") or "").strip() or None,
            draft=flag(get("STORYKIT_GITLAB_DRAFT"), "STORYKIT_GITLAB_DRAFT"),
            labels=split_csv(get("STORYKIT_GITLAB_LABELS")),
        )


class GitLabBackend:
    name = "gitlab"
    capabilities: frozenset[str] = frozenset({"push", "pull_request", "draft", "labels"})

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.time,
        max_retries: int = 3,
        max_wait: float = 20.0,
    ) -> None:
        """``environ`` holds the settings (read at each run); the rest is for tests."""
        self._environ = dict(environ or {})
        self._client = client
        self._sleep = sleep
        self._clock = clock
        self._max_retries = max_retries
        self._max_wait = max_wait

    @classmethod
    def from_settings(cls, settings: Settings) -> GitLabBackend:
        return cls(settings.environ)

    async def open(self, request: PRRequest) -> PRResult:
        if request.dry_run:
            project = (self._environ.get("STORYKIT_GITLAB_PROJECT") or "").strip()
            remote = f"GitLab {project}" if project else None
            return await preview(request, detail="diff", remote=remote, backend=self.name)
        config = GitLabConfig.read(self._environ.get)
        local = await build_local_commit(request)
        actions = [action for change in local.changes for action in _actions(change)]
        async with forge_client(self._client) as client:
            http = ForgeHTTP(
                forge="GitLab",
                api=config.api,
                headers={"PRIVATE-TOKEN": config.token, "User-Agent": "storykit"},
                client=client,
                sleep=self._sleep,
                clock=self._clock,
                max_retries=self._max_retries,
                max_wait=self._max_wait,
            )
            return await _Run(http, config, request, local).open(actions)


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


class _Run:
    """One merge request: the calls in order, and what each failure means."""

    def __init__(
        self, http: ForgeHTTP, config: GitLabConfig, request: PRRequest, local: LocalCommit
    ) -> None:
        self.http = http
        self.config = config
        self.request = request
        self.local = local
        self.project = f"/projects/{quote(config.project, safe='')}"

    async def open(self, actions: list[dict[str, Any]]) -> PRResult:
        local = self.local
        project = await self._json("GET", self.project, what="reading the project")
        target = self.config.base or str(project.get("default_branch") or "")
        if not target:
            raise BackendError(
                f"GitLab did not say which branch of {self.config.project} is default"
            )
        head = await self._branch_head(target)
        if head != local.base:
            await self._check_ancestor(head, target)
        commit = await self._create_commit(actions)
        sha = str(commit.get("id") or "")
        try:
            mr = await self._create_merge_request(target)
        except StorykitError as exc:
            note = await self._delete_branch()
            raise type(exc)(exc.detail + note) from exc
        except BaseException:
            await self._delete_branch()
            raise
        return PRResult(
            backend="gitlab",
            branch=local.branch,
            diff=self.request.variant.diff,
            dry_run=False,
            operations=tuple(self.http.operations),
            commit=sha,
            url=str(mr.get("web_url") or "") or None,
            plan_id=self.request.plan_id,
            variant=self.request.variant.key,
        )

    # -- steps -----------------------------------------------------------------------
    async def _branch_head(self, branch: str) -> str:
        what = f"reading branch {branch!r}"
        path = f"{self.project}/repository/branches/{quote(branch, safe='')}"
        response = await self.http.call("GET", path, what=what)
        if response.status_code == 404 and "branch" in forge_message(response).lower():
            raise Invalid(
                f"{self.config.project} has no branch {branch!r} to open the merge request"
                " against (STORYKIT_GITLAB_BASE)"
            )
        found = self._ok(response, what)
        return str((found.get("commit") or {}).get("id") or "")

    async def _check_ancestor(self, head: str, branch: str) -> None:
        base = self.local.base
        what = "comparing the reviewed base with the target branch"
        response = await self.http.call(
            "GET",
            f"{self.project}/repository/merge_base",
            what=what,
            params=[("refs[]", head), ("refs[]", base)],
        )
        if response.status_code in (400, 404):
            raise Conflict(
                f"the reviewed base commit {base[:12]} is not on GitLab"
                f" ({self.config.project}); push it first, then open the merge request again"
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
            f"{self.project}/repository/commits",
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
                f"branch {branch!r} already exists on GitLab ({self.config.project});"
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
        response = await self.http.call(
            "POST", f"{self.project}/merge_requests", what=what, json=body
        )
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
                f"{self.project}/merge_requests",
                what="looking for the existing merge request",
                params={"source_branch": self.local.branch, "state": "opened"},
            )
        except StorykitError:
            response = None  # only decorates the conflict being reported
        found = response.json() if response is not None and response.status_code == 200 else []
        if isinstance(found, list) and found and isinstance(found[0], dict):
            return f" (!{found[0].get('iid')}: {found[0].get('web_url')})"
        return f" (!{iid})" if iid else ""

    async def _delete_branch(self) -> str:
        """Remove the branch this run made; a note for the error message."""
        branch = self.local.branch
        path = f"{self.project}/repository/branches/{quote(branch, safe='')}"
        with anyio.CancelScope(shield=True):
            try:
                response = await self.http.call(
                    "DELETE", path, what=f"deleting branch {branch!r} again"
                )
            except StorykitError:
                response = None
        if response is not None and response.status_code in (204, 404):
            return f"; branch {branch!r} was deleted again"
        return f"; branch {branch!r} was left on GitLab: delete it before trying again"

    # -- responses -------------------------------------------------------------------
    async def _json(self, method: str, path: str, *, what: str) -> dict[str, Any]:
        return self._ok(await self.http.call(method, path, what=what), what)

    def _ok(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if response.is_success:
            return json_object(response, what, "GitLab")
        self._fail(response, what)

    def _fail(self, response: httpx.Response, what: str) -> NoReturn:
        status = response.status_code
        said = forge_message(response)
        project = self.config.project
        if status == 401:
            raise BackendError(
                "GitLab rejected the token: set GITLAB_TOKEN to a token with api scope"
                f" (GitLab said: {said})"
            )
        if status == 404:
            raise BackendError(
                f"GitLab answered 404 while {what} ({said}): the project {project} does not"
                " exist or the token cannot see it; check STORYKIT_GITLAB_PROJECT and the"
                " token's access"
            )
        if status == 403:
            raise BackendError(
                f"GitLab refused {what} ({said}): the token needs api scope and at least"
                f" the Developer role in {project}"
            )
        if status == 409:
            raise Conflict(f"GitLab refused {what}: {said}")
        raise BackendError(f"GitLab failed {what}: HTTP {status}: {said}")


@hookimpl
def storykit_register_pr_backends(
    register: Callable[[PRBackend], None], settings: Settings
) -> None:
    """Register the ``gitlab`` backend (always; it says what to set when it is not configured)."""
    register(GitLabBackend.from_settings(settings))
