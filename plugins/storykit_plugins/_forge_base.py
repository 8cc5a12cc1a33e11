"""What the ``github`` and ``gitlab`` backends do alike, around each forge's own API calls.

:class:`ForgeBackend` reads the settings (``<FORGE>_TOKEN``, the repository or
project, ``STORYKIT_<FORGE>_API``, ``_BASE``, ``_DRAFT``, ``_LABELS``), answers a
dry run without a request, builds the commit locally and opens the HTTP client;
a subclass names its settings, checks its repository or project name, gives its
auth headers and its :class:`ForgeRun`.

:class:`ForgeRun` is one PR: the target branch (checked to hold the reviewed
base), the PR opened on the new branch (deleted again if that fails), the result,
and what a failed answer means. A subclass makes the forge's own calls.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, NoReturn, Self

import anyio
import httpx

from storykit.backends import PRRequest, PRUpdate
from storykit.errors import BackendError, Conflict, Invalid, NotConfigured, StorykitError
from storykit.models import PRResult, PullRequest
from storykit.settings import Settings
from storykit_plugins._forge import (
    ForgeHTTP,
    LocalCommit,
    Params,
    Sleep,
    api_base,
    build_local_commit,
    flag,
    forge_client,
    forge_message,
    json_object,
    split_csv,
)
from storykit_plugins.pr_dryrun import preview

__all__ = ["ForgeBackend", "ForgeConfig", "ForgeRun", "mapping", "positive_number"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ForgeConfig:
    token: str = dataclasses.field(repr=False)
    target: str
    """The repository (GitHub ``owner/name``) or project (GitLab ``group/name`` or id)."""
    api: str
    base: str | None = None
    draft: bool = False
    labels: tuple[str, ...] = ()


class ForgeBackend(abc.ABC):
    """A PR backend on a forge's REST API; subclasses fill in the class attributes."""

    name: str
    """The backend's name, ``github``; its settings are ``STORYKIT_GITHUB_…``."""
    forge: str
    """How messages name the forge: ``GitHub``."""
    auth_setting: str
    """The setting that holds the token: ``GITHUB_TOKEN``."""
    target_setting: str
    default_api: str
    how: str
    """What to set, for the error that says a setting is missing."""
    run_class: ClassVar[type[ForgeRun]]
    capabilities: frozenset[str] = frozenset({"push", "pull_request", "draft", "labels"})
    webhook: str | None
    """The webhook route whose deliveries :meth:`webhook_updates` reads (the backend's name)."""

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
        """``environ`` holds the settings (read at each run, so a missing token is
        reported when a PR is opened); ``client``, ``sleep`` and ``clock`` are for tests."""
        self._environ = dict(environ or {})
        self._client = client
        self._sleep = sleep
        self._clock = clock
        self._max_retries = max_retries
        self._max_wait = max_wait

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings.environ)

    # -- what a subclass says -----------------------------------------------------------
    @abc.abstractmethod
    def _check_target(self, target: str) -> None:
        """Raise :class:`Invalid` if ``target`` is not a repository or project name."""

    @abc.abstractmethod
    def _headers(self, config: ForgeConfig) -> dict[str, str]:
        """The auth (and other) headers of every request."""

    @abc.abstractmethod
    def webhook_updates(self, event: str, payload: Mapping[str, Any]) -> list[PRUpdate]:
        """What a verified delivery of ``event`` says about pull requests (a
        :class:`~storykit.backends.PRTracker`); empty for events it does not follow."""

    @abc.abstractmethod
    async def _poll(self, http: ForgeHTTP, pr: PullRequest) -> PRUpdate:
        """The forge's calls that read ``pr``'s state and its head's checks."""

    # -- shared ---------------------------------------------------------------------------
    def _read_config(self) -> ForgeConfig:
        """From the environment; :class:`NotConfigured` says what to set."""
        get = self._environ.get
        prefix = f"STORYKIT_{self.name.upper()}_"
        token = (get(self.auth_setting) or "").strip()
        target = (get(self.target_setting) or "").strip().strip("/")
        wanted = ((self.auth_setting, token), (self.target_setting, target))
        missing = [setting for setting, value in wanted if not value]
        if missing:
            raise NotConfigured(
                f"the {self.name} PR backend needs {' and '.join(missing)}: {self.how}"
            )
        self._check_target(target)
        return ForgeConfig(
            token=token,
            target=target,
            api=api_base(get(prefix + "API"), self.default_api, prefix + "API"),
            base=(get(prefix + "BASE") or "").strip() or None,
            draft=flag(get(prefix + "DRAFT"), prefix + "DRAFT"),
            labels=split_csv(get(prefix + "LABELS")),
        )

    def _http(self, config: ForgeConfig, client: httpx.AsyncClient) -> ForgeHTTP:
        return ForgeHTTP(
            forge=self.forge,
            api=config.api,
            headers=self._headers(config),
            client=client,
            sleep=self._sleep,
            clock=self._clock,
            max_retries=self._max_retries,
            max_wait=self._max_wait,
        )

    async def poll(self, pr: PullRequest) -> PRUpdate:
        """Read ``pr``'s state and its head's checks through the API (a
        :class:`~storykit.backends.PRTracker`, where no webhook secret is configured)."""
        config = self._read_config()
        async with forge_client(self._client) as client:
            return await self._poll(self._http(config, client), pr)

    async def _get(
        self, http: ForgeHTTP, path: str, *, what: str, params: Params | None = None
    ) -> Any:
        """The JSON a GET answers; any other answer than a success is :class:`BackendError`."""
        response = await http.call("GET", path, what=what, params=params)
        if not response.is_success:
            raise BackendError(
                f"{self.forge} failed {what}: HTTP {response.status_code}:"
                f" {forge_message(response)}"
            )
        return json_object(response, what, self.forge)

    async def open(self, request: PRRequest) -> PRResult:
        if request.dry_run:
            target = (self._environ.get(self.target_setting) or "").strip()
            remote = f"{self.forge} {target}" if target else None
            return await preview(request, detail="diff", remote=remote, backend=self.name)
        config = self._read_config()
        local = await build_local_commit(request)  # a diff that does not apply fails offline
        async with forge_client(self._client) as client:
            http = self._http(config, client)
            run = self.run_class(http, config, request, local, backend=self.name)
            return await run.open()


class ForgeRun(abc.ABC):
    """One PR on a forge: the calls in order, and what each failure means."""

    home_what: ClassVar[str]
    """What reading :attr:`home` is called in messages: ``reading the repository``."""
    deleted: ClassVar[frozenset[int]] = frozenset({204, 404})
    """The answers to deleting a branch that mean it is gone."""

    def __init__(
        self,
        http: ForgeHTTP,
        config: ForgeConfig,
        request: PRRequest,
        local: LocalCommit,
        *,
        backend: str,
    ) -> None:
        self.http = http
        self.config = config
        self.request = request
        self.local = local
        self.backend = backend
        self.forge = http.forge

    # -- what a subclass says -----------------------------------------------------------
    @property
    @abc.abstractmethod
    def home(self) -> str:
        """The API path of the repository or project."""

    @property
    @abc.abstractmethod
    def branch_path(self) -> str:
        """The API path that deletes the branch this run makes."""

    @abc.abstractmethod
    async def open(self) -> PRResult:
        """Make the forge's calls in order; the result of :meth:`_result`."""

    @abc.abstractmethod
    async def _branch_head(self, branch: str) -> str:
        """The commit ``branch`` points at on the forge."""

    @abc.abstractmethod
    async def _check_ancestor(self, head: str, branch: str) -> None:
        """Raise :class:`Conflict` unless the reviewed base is an ancestor of ``head``."""

    @abc.abstractmethod
    def _explain(self, status: int, said: str, what: str) -> str | None:
        """What a 401, 403 or 404 means on this forge, and what to fix; None for others."""

    # -- shared ---------------------------------------------------------------------------
    async def _target_branch(self) -> str:
        """The branch the PR goes into, once it is known to hold the reviewed base."""
        home = await self._json("GET", self.home, what=self.home_what)
        branch = self.config.base or str(home.get("default_branch") or "")
        if not branch:
            raise BackendError(
                f"{self.forge} did not say which branch of {self.config.target} is default"
            )
        head = await self._branch_head(branch)
        if head != self.local.base:
            await self._check_ancestor(head, branch)
        return branch

    async def _on_new_branch(
        self, create: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """``create()`` the PR on the branch this run made; if that fails, delete the branch."""
        try:
            return await create()
        except StorykitError as exc:
            note = await self._delete_branch()
            raise type(exc)(exc.detail + note) from exc
        except BaseException:
            await self._delete_branch()
            raise

    def _result(
        self,
        commit: str,
        url: str | None,
        *,
        number: int | None = None,
        repository: str | None = None,
    ) -> PRResult:
        return PRResult(
            number=number,
            repository=repository,
            backend=self.backend,
            branch=self.local.branch,
            diff=self.request.variant.diff,
            dry_run=False,
            operations=tuple(self.http.operations),
            commit=commit,
            url=url or None,
            plan_id=self.request.plan_id,
            variant=self.request.variant.key,
        )

    async def _delete_branch(self) -> str:
        """Remove the branch this run made; a note for the error message."""
        branch = self.local.branch
        with anyio.CancelScope(shield=True):
            try:
                response = await self.http.call(
                    "DELETE", self.branch_path, what=f"deleting branch {branch!r} again"
                )
            except StorykitError:
                response = None
        if response is not None and response.status_code in self.deleted:
            return f"; branch {branch!r} was deleted again"
        return f"; branch {branch!r} was left on {self.forge}: delete it before trying again"

    # -- responses -------------------------------------------------------------------------
    async def _json(self, method: str, path: str, *, what: str, json: Any = None) -> dict[str, Any]:
        return self._ok(await self.http.call(method, path, what=what, json=json), what)

    def _ok(self, response: httpx.Response, what: str) -> dict[str, Any]:
        """The JSON object of a successful answer; any other answer is an error."""
        if response.is_success:
            return json_object(response, what, self.forge)
        self._fail(response, what)

    def _fail(self, response: httpx.Response, what: str) -> NoReturn:
        status = response.status_code
        said = forge_message(response)
        explained = self._explain(status, said, what)
        if explained is not None:
            raise BackendError(explained)
        if status == 409:
            raise Conflict(f"{self.forge} refused {what}: {said}")
        raise BackendError(f"{self.forge} failed {what}: HTTP {status}: {said}")


def mapping(value: object) -> Mapping[str, Any]:
    """``value`` if a forge's JSON gave an object there, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def positive_number(value: object, what: str) -> int:
    """A pull (merge) request's number from a delivery: a positive whole number."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise Invalid(f"the delivery's {what} is not a positive whole number")
