"""What the forge backends (``github``, ``gitlab``) share.

**The content comes from the local repository.** The suggestions were reviewed as
diffs against a local commit, so the commit a forge backend makes is built from
that same commit, exactly as the ``git`` backend builds it (``git apply --3way``
of the variant's diff), but in a throwaway index *and* a throwaway object
directory: nothing is written to the user's working tree, index or ``.git``.
The result is a list of file changes (path, mode, new bytes) that the forge's
API turns into a commit whose parent is the reviewed base. The forge must already
have that base commit (it was pushed); each backend checks that, and that it is
an ancestor of the branch the request targets, so a PR never carries commits
nobody reviewed.

**The HTTP side** is :class:`ForgeHTTP`: absolute URLs under the configured API
base, the forge's auth headers, a log of every call (the result's
``operations``), rate-limit retries with an injectable ``sleep``, and transport
failures turned into :class:`BackendError` (by
:func:`~storykit_plugins._http.map_httpx_errors`). Tokens live only in the
headers: they are never logged, never part of an operation line or an error message.
What the two backends do alike around it is :mod:`storykit_plugins._forge_base`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import math
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio
import anyio.to_thread
import httpx

from storykit.backends import PRRequest
from storykit.errors import BackendError, Conflict, Invalid
from storykit_plugins._git import (
    check_branch_name,
    git_ok,
    repo_root,
    resolve_commit,
    run_git,
    summarize,
)
from storykit_plugins._git_pr import approvers, commit_message, variant_suggestions
from storykit_plugins._http import map_httpx_errors

__all__ = [
    "FileChange",
    "ForgeHTTP",
    "LocalCommit",
    "Params",
    "Sleep",
    "api_base",
    "build_local_commit",
    "flag",
    "forge_client",
    "forge_message",
    "forge_time",
    "json_object",
    "pr_body",
    "pr_title",
    "split_csv",
]

Sleep = Callable[[float], Awaitable[None]]
Params = Mapping[str, str] | list[tuple[str, str]]
DELETED = "000000"
# Retrying without any hint from the forge: GitHub asks for at least a minute.
_NO_HINT_WAIT = 60.0
_TITLE_MAX = 250  # GitHub allows 256 characters, GitLab 255


# -- the commit, built locally ----------------------------------------------------------
@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class FileChange:
    """One path the commit changes. ``content`` is None for a deletion."""

    path: str
    status: str
    """``A`` added, ``M`` modified (content or mode), ``T`` type changed, ``D`` deleted."""
    mode: str
    """The new mode (``100644``, ``100755``, ``120000``, ``160000``); ``000000`` if deleted."""
    old_mode: str
    old_oid: str
    """The old object's id (all zeros for an added path)."""
    oid: str
    """The new object's id (the same id the forge will give it)."""
    content: bytes | None

    @property
    def text(self) -> str | None:
        """The content as UTF-8 text, or None if it is binary (or deleted)."""
        if self.content is None or b"\0" in self.content:
            return None
        try:
            return self.content.decode("utf-8")
        except UnicodeDecodeError:
            return None


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class LocalCommit:
    """The reviewed base and the tree the variant turns it into."""

    base: str
    base_tree: str
    tree: str
    branch: str
    message: str
    changes: tuple[FileChange, ...]


async def build_local_commit(request: PRRequest) -> LocalCommit:
    """Apply the variant's diff to the base in a scratch index and object directory."""
    variant = request.variant
    if not variant.diff.strip():
        raise Invalid(f"variant {variant.key!r} has no changes to commit")
    repo = await repo_root(request.repo_path)
    branch = await check_branch_name(repo, request.branch)
    base = await resolve_commit(repo, request.base_ref)
    await anyio.Path(request.work_dir).mkdir(parents=True, exist_ok=True)
    scratch = Path(
        await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp("", "forge-", request.work_dir))
    )
    try:
        objects = await git_ok(
            ["rev-parse", "--path-format=absolute", "--git-path", "objects"],
            cwd=repo,
            what="git rev-parse",
        )
        await anyio.Path(scratch / "objects").mkdir()
        # New blobs and trees go to the scratch object directory; the repository's own
        # objects are read through the alternates list and never written.
        env = {
            "GIT_INDEX_FILE": str(scratch / "index"),
            "GIT_OBJECT_DIRECTORY": str(scratch / "objects"),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects.decode().strip(),
        }
        patch = scratch / "variant.patch"
        await anyio.Path(patch).write_text(variant.diff, encoding="utf-8", newline="")
        await git_ok(["read-tree", base], cwd=repo, env=env, what="git read-tree")
        base_tree = await _rev(repo, f"{base}^{{tree}}", env)
        applied = await run_git(
            ["apply", "--3way", "--cached", "--whitespace=nowarn", str(patch)], cwd=repo, env=env
        )
        if not applied.ok:
            raise Conflict(
                f"the diff of variant {variant.key!r} does not apply to "
                f"{request.base_ref} ({base[:12]}): {summarize(applied.stderr)}"
            )
        tree = (await git_ok(["write-tree"], cwd=repo, env=env, what="git write-tree")).decode()
        tree = tree.strip()
        if tree == base_tree:
            raise Invalid(f"the diff of variant {variant.key!r} changes nothing in {base[:12]}")
        changes = await _changes(repo, base_tree, tree, env)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, scratch, True)
    return LocalCommit(
        base=base,
        base_tree=base_tree,
        tree=tree,
        branch=branch,
        message=commit_message(request),
        changes=tuple(changes),
    )


async def _rev(repo: Path, name: str, env: Mapping[str, str]) -> str:
    out = await git_ok(["rev-parse", "--verify", name], cwd=repo, env=env, what="git rev-parse")
    return out.decode().strip()


async def _changes(
    repo: Path, old_tree: str, new_tree: str, env: Mapping[str, str]
) -> list[FileChange]:
    raw = await git_ok(
        ["diff-tree", "-r", "-z", "--no-renames", "--no-commit-id", old_tree, new_tree],
        cwd=repo,
        env=env,
        what="git diff-tree",
    )
    # Records: ":<old mode> <new mode> <old oid> <new oid> <status>\0<path>\0"
    fields = raw.split(b"\0")
    entries: list[FileChange] = []
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        if not meta.startswith(b":"):
            continue
        old_mode, new_mode, old_oid, new_oid, status = meta[1:].decode().split()
        entries.append(
            FileChange(
                path=path.decode("utf-8", "surrogateescape"),
                status=status[0],
                mode=new_mode,
                old_mode=old_mode,
                old_oid=old_oid,
                oid=new_oid,
                content=None,
            )
        )
    wanted = [c.oid for c in entries if c.status != "D" and c.mode != "160000"]
    blobs = await _read_objects(repo, wanted, env)
    return [
        dataclasses.replace(c, content=blobs.get(c.oid, b"")) if c.status != "D" else c
        for c in entries
    ]


async def _read_objects(
    repo: Path, oids: Sequence[str], env: Mapping[str, str]
) -> dict[str, bytes]:
    """Contents of ``oids`` from one ``git cat-file --batch`` (which sees the scratch objects)."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    out = await git_ok(
        ["cat-file", "--batch"],
        cwd=repo,
        env=env,
        input="".join(f"{oid}\n" for oid in wanted).encode(),
        what="git cat-file",
    )
    found: dict[str, bytes] = {}
    pos = 0
    for oid in wanted:
        eol = out.index(b"\n", pos)
        header = out[pos:eol].split()
        pos = eol + 1
        if len(header) != 3:
            raise BackendError(f"git cat-file could not read {oid}")
        size = int(header[2])
        found[oid] = out[pos : pos + size]
        pos += size + 1
    return found


# -- the pull request's text ------------------------------------------------------------
def _one_line(text: str) -> str:
    return " ".join(text.split())


def pr_title(request: PRRequest) -> str:
    """The goal's first line, else the variant's title."""
    lines = [line for line in request.goal.splitlines() if line.strip()]
    title = _one_line(lines[0]) if lines else _one_line(request.variant.title)
    title = title or "storykit change"
    return title if len(title) <= _TITLE_MAX else title[: _TITLE_MAX - 1] + "…"


def pr_body(request: PRRequest) -> str:
    """Markdown: the goal, the variant, each suggestion, who approved, and the plan id."""
    variant = request.variant
    suggestions = variant_suggestions(request)
    names = approvers(suggestions)
    goal_rest = "\n".join(request.goal.strip().splitlines()[1:]).strip()
    out = [goal_rest, ""] if goal_rest else []
    out.append(f"**Variant:** {_one_line(variant.title)} (`{variant.key}`, risk {variant.risk})")
    out.append("")
    out.append("### Suggestions")
    for s in suggestions:
        who = ", ".join(dict.fromkeys(_one_line(r.reviewer) for r in s.approvals)) or "nobody"
        out.append(f"- {_one_line(s.title)} (`{s.id}`, risk {s.risk}; approved by {who})")
    if not suggestions:
        out.append("- none")
    out.append("")
    out.append(f"**Approved by:** {', '.join(names) if names else 'nobody (no current approval)'}")
    out.append(f"**Requested by:** {_one_line(request.requested_by)}")
    out.append(f"**storykit plan:** `{request.plan_id}`")
    out.append("")
    out.append(
        "<sub>Opened by storykit. The commit carries `Suggestion-Id:` and `Approved-by:`"
        " trailers.</sub>"
    )
    return "\n".join(out) + "\n"


# -- settings helpers ---------------------------------------------------------------------
def flag(raw: str | None, name: str) -> bool:
    """A boolean setting; an unreadable value is :class:`Invalid` naming the variable."""
    value = (raw or "").strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise Invalid(f"{name}={raw!r}: expected true or false")


def split_csv(raw: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in (raw or "").split(",") if p.strip()))


def api_base(raw: str | None, default: str, name: str) -> str:
    """The API base URL without a trailing slash; http(s) only."""
    value = (raw or "").strip() or default
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise Invalid(f"{name}={value!r}: expected an http(s) URL like {default}")
    return value.rstrip("/")


# -- HTTP -----------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def forge_client(client: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """The injected client as it is, or a fresh one closed afterwards."""
    if client is not None:
        yield client
        return
    # retries= repeats only failed connection attempts: those never reached the forge,
    # so even a POST is safe to repeat.
    transport = httpx.AsyncHTTPTransport(retries=2)
    async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(30.0)) as fresh:
        yield fresh


def json_object(response: httpx.Response, what: str, forge: str) -> dict[str, Any]:
    """The JSON object a successful answer carries, or :class:`BackendError`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BackendError(
            f"{forge} answered {what} with something other than a JSON object"
            f" (HTTP {response.status_code})"
        )
    return body


def forge_message(response: httpx.Response) -> str:
    """The forge's own explanation from an error body (GitHub's and GitLab's shapes)."""
    try:
        body = response.json()
    except ValueError:
        text = _one_line(response.text)[:200]
        return text or response.reason_phrase
    parts: list[str] = []

    def add(value: object) -> None:
        if isinstance(value, str) and value.strip():
            parts.append(_one_line(value))
        elif isinstance(value, list):
            for item in value:
                add(item)
        elif isinstance(value, dict):
            if "message" in value:
                add(value["message"])
            elif "code" in value:  # GitHub: {"resource", "field", "code": "missing"}
                add(" ".join(str(value.get(k, "")) for k in ("resource", "field", "code")))
            else:  # GitLab: {"field": ["is invalid"]}
                for key, item in value.items():
                    add(f"{key} {'; '.join(map(str, item))}" if isinstance(item, list) else item)

    if isinstance(body, dict):
        add(body.get("message"))
        add(body.get("errors"))
        add(body.get("error_description") or body.get("error"))
    else:
        add(body)
    return "; ".join(dict.fromkeys(parts))[:500] or response.reason_phrase


def forge_time(value: object) -> datetime | None:
    """A forge's timestamp (``2024-01-02T03:04:05Z``, GitLab's hooks'
    ``2024-01-02 03:04:05 UTC``) as an aware datetime; None if there is none or it is
    unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4].replace(" ", "T") + "+00:00"
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def rate_limit_wait(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait before repeating a rate-limited request; None if it was not one."""
    status = response.status_code
    if status not in (403, 429):
        return None
    headers = response.headers
    retry_after = headers.get("retry-after")
    if retry_after:
        seconds = _retry_after(retry_after, now)
        if seconds is not None:
            return seconds
    remaining = headers.get("x-ratelimit-remaining") or headers.get("ratelimit-remaining")
    reset = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset")
    if remaining == "0" and reset and reset.isdigit():
        return max(0.0, int(reset) - now)
    if status == 429 or "rate limit" in forge_message(response).lower():
        return _NO_HINT_WAIT
    return None  # a 403 that is about permissions, not about pace


def _retry_after(value: str, now: float) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class ForgeHTTP:
    """Calls to one forge's API for one PR run, each logged as ``METHOD /path``."""

    def __init__(
        self,
        *,
        forge: str,
        api: str,
        headers: Mapping[str, str],
        client: httpx.AsyncClient,
        sleep: Sleep,
        clock: Callable[[], float],
        max_retries: int = 3,
        max_wait: float = 20.0,
    ) -> None:
        self.forge = forge
        self.api = api
        self._headers = dict(headers)
        self._client = client
        self._sleep = sleep
        self._clock = clock
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.operations: list[str] = []

    async def call(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        params: Params | None = None,
    ) -> httpx.Response:
        """Send one request; repeat it while the forge asks to slow down (bounded)."""
        line = f"{method} {path}" + (f"?{urlencode(params)}" if params else "")
        waited = 0.0
        attempt = 0
        while True:
            self.operations.append(line)
            response = await self._send(method, path, what=what, json=json, params=params)
            hint = rate_limit_wait(response, self._clock())
            if hint is None:
                return response
            wait = max(hint, float(2**attempt))
            if attempt >= self.max_retries or waited + wait > self.max_wait:
                again = datetime.fromtimestamp(self._clock() + wait, UTC)
                raise BackendError(
                    f"{self.forge} is rate limiting these requests ({forge_message(response)})"
                    f" while {what}; try again after {again:%Y-%m-%d %H:%M:%S} UTC"
                    f" (in {math.ceil(wait)}s)"
                )
            self.operations.append(
                f"# rate limited (HTTP {response.status_code}); waited {wait:g}s"
            )
            await self._sleep(wait)
            waited += wait
            attempt += 1

    async def _send(
        self, method: str, path: str, *, what: str, json: Any, params: Params | None
    ) -> httpx.Response:
        pairs = params.items() if isinstance(params, Mapping) else params or ()
        query: list[tuple[str, str | int | float | bool | None]] = list(pairs)
        host = _host(self.api)
        with map_httpx_errors(
            timeout=f"{self.forge} did not answer in time while {what} ({host})",
            unreachable=lambda error: (
                f"could not reach {self.forge} at {host} while {what}: {error}"
            ),
        ):
            return await self._client.request(
                method, self.api + path, json=json, params=query, headers=self._headers
            )


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
