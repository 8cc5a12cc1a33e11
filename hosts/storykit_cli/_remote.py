"""The remote transport: a running storykit server over HTTP, with an API key.

The key travels only in the ``X-API-Key`` header (never in a URL, an error message
or a log line). Errors come back as problem+json; their ``detail`` is what the
user sees. The live stream (``GET /events``) is read with httpx-sse: its ``ready``
event says where it starts (``head``) and which log it reads (``epoch``); the
follower (:mod:`storykit_cli.watch`) resumes a lost one with ``Last-Event-ID`` and
that epoch, so nothing is missed across a restart and ids from a replaced database
are not taken for this one's.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
from httpx_sse import ServerSentEvent, SSEError, aconnect_sse

import storykit
from storykit.errors import StorykitError
from storykit_cli.errors import USAGE, ConnectionFailed, Failure
from storykit_cli.transport import JSON, Missed, Position, StreamItem, StreamLost

if TYPE_CHECKING:
    from storykit.filters import SuggestionFilter

__all__ = ["RemoteError", "RemoteTransport"]

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
# Longer than the server's default heartbeat (15 s) with room to spare: a stream
# silent for this long is dead and gets reconnected.
STREAM_IDLE_TIMEOUT = 45.0
_LONG = httpx.Timeout(None, connect=CONNECT_TIMEOUT)  # generate, refine, plan, PR
_HEADER_SAFE = re.compile(r"[!-~]+")  # printable ASCII, no spaces: what API_TOKENS accepts


class RemoteError(StorykitError):
    """An error the server answered with (problem+json), carrying its status."""

    title = "Server error"

    def __init__(self, status: int, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.retry_after = retry_after


def _problem(response: httpx.Response) -> RemoteError:
    status = response.status_code
    detail = ""
    try:
        body = response.json()
        if isinstance(body, Mapping):
            detail = str(body.get("detail") or body.get("title") or "")
    except ValueError:
        pass
    if not detail:
        first = response.text.strip().splitlines()[:1]
        detail = f"the server answered HTTP {status}" + (f": {first[0][:200]}" if first else "")
    retry_after: float | None = None
    if status == 429:
        with contextlib.suppress(ValueError):
            retry_after = float(response.headers.get("retry-after", ""))
    return RemoteError(status, detail, retry_after=retry_after)


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return str(exc) or type(exc).__name__


def _seg(value: str) -> str:
    return quote(value, safe="")


class RemoteTransport:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self.url = url

    @property
    def where(self) -> str:
        return self.url

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, key: str | None) -> AsyncIterator[RemoteTransport]:
        base = url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Failure(
                f"--url {url!r} is not an http(s) URL",
                hint="use e.g. --url http://127.0.0.1:8001",
                exit_code=USAGE,
            )
        if not key:
            raise Failure(
                "no API key for --url",
                hint="pass --key or set STORYKIT_API_KEY (a server started without API_TOKENS"
                " keeps its admin key in <data dir>/api-key)",
            )
        key = key.strip()
        if not _HEADER_SAFE.fullmatch(key):
            # Never echo it: httpx's own error for this would quote the key.
            raise Failure(
                "the API key has a space or a control character in it",
                hint="check --key or STORYKIT_API_KEY: paste the key alone",
            )
        headers = {"X-API-Key": key, "User-Agent": f"storykit-cli/{storykit.__version__}"}
        timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout) as http:
            yield cls(http, base)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        params: Mapping[str, Any] | None = None,
        long: bool = False,
        key: str | None = None,
    ) -> JSON:
        """``key``: an ``Idempotency-Key``, so that a retry returns the first answer."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if key is not None and not _HEADER_SAFE.fullmatch(key):
            raise Failure(
                "--idempotency-key must be printable ASCII without spaces",
                hint="use a UUID, say",
                exit_code=USAGE,
            )
        try:
            response = await self._http.request(
                method,
                path,
                json=body,
                params=query,
                headers=None if key is None else {"Idempotency-Key": key},
                timeout=_LONG if long else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            raise ConnectionFailed(self.url, _reason(exc)) from exc
        if response.status_code >= 400:
            raise _problem(response)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ConnectionFailed(
                self.url, f"{method} {path} did not answer with storykit's JSON; is it storykit?"
            )
        return data

    # -- events ---------------------------------------------------------------
    async def read_events(self, *, after: int, limit: int) -> JSON:
        return await self._call("GET", "/events/log", params={"after": after, "limit": limit})

    @contextlib.asynccontextmanager
    async def stream(
        self, *, after: int | None, epoch: str | None
    ) -> AsyncIterator[AsyncIterator[StreamItem]]:
        try:
            async with aconnect_sse(
                self._http,
                "GET",
                "/events",
                headers={} if after is None else {"Last-Event-ID": str(after)},
                params={} if epoch is None else {"epoch": epoch},
                timeout=httpx.Timeout(STREAM_IDLE_TIMEOUT, connect=CONNECT_TIMEOUT),
            ) as source:
                response = source.response
                if 400 <= response.status_code < 500:
                    await response.aread()
                    raise _problem(response)  # a bad key will not get better by retrying
                if response.status_code != 200:
                    raise StreamLost(f"HTTP {response.status_code}")
                async with contextlib.aclosing(_items(source.aiter_sse())) as items:
                    yield items
        except (httpx.TransportError, SSEError) as exc:
            raise StreamLost(_reason(exc)) from exc

    # -- suggestions ----------------------------------------------------------
    async def generate(
        self, *, sources: Sequence[str] | None, paths: Sequence[str], run: str | None = None
    ) -> JSON:
        body: JSON = {"sources": list(sources) if sources else None, "paths": list(paths)}
        if run is not None:
            body["run"] = run
        return await self._call("POST", "/suggest/generate", body=body, long=True)

    async def list_suggestions(
        self, where: SuggestionFilter, *, after: str | None, limit: int
    ) -> JSON:
        params = where.params() | {"after": after, "limit": limit}
        return await self._call("GET", "/suggestions", params=params)

    async def get_suggestion(self, suggestion_id: str) -> JSON:
        return await self._call("GET", f"/suggestions/{_seg(suggestion_id)}")

    async def submit(
        self,
        *,
        title: str,
        diff: str,
        rationale: str,
        base_ref: str,
        idempotency_key: str | None = None,
    ) -> JSON:
        body = {"title": title, "diff": diff, "rationale": rationale, "base_ref": base_ref}
        return await self._call("POST", "/suggestions", body=body, key=idempotency_key)

    async def revise(
        self,
        suggestion_id: str,
        *,
        diff: str,
        title: str | None,
        rationale: str | None,
        idempotency_key: str | None = None,
    ) -> JSON:
        body = {"diff": diff, "title": title, "rationale": rationale}
        path = f"/suggestions/{_seg(suggestion_id)}/revisions"
        return await self._call("POST", path, body=body, key=idempotency_key)

    async def review(
        self,
        suggestion_id: str,
        *,
        action: str,
        comment: str,
        comments: Sequence[Mapping[str, Any]] = (),
    ) -> JSON:
        body: JSON = {"id": suggestion_id, "action": action, "comment": comment}
        if comments:
            body["comments"] = [dict(c) for c in comments]
        return await self._call("POST", "/suggest/review", body=body)

    async def review_many(
        self,
        *,
        action: str,
        comment: str,
        ids: Sequence[str] | None,
        where: SuggestionFilter | None,
        limit: int,
    ) -> JSON:
        body: JSON = {"action": action, "comment": comment, "limit": limit}
        if ids is not None:
            body["ids"] = list(ids)
        if where is not None:
            body["filter"] = where.params()
        return await self._call("POST", "/suggest/review/bulk", body=body, long=True)

    async def list_revisions(self, suggestion_id: str) -> JSON:
        return await self._call("GET", f"/suggestions/{_seg(suggestion_id)}/revisions")

    async def get_revision(self, suggestion_id: str, number: int) -> JSON:
        return await self._call("GET", f"/suggestions/{_seg(suggestion_id)}/revisions/{number}")

    async def interdiff(self, suggestion_id: str, *, start: int | None, end: int | None) -> JSON:
        path = f"/suggestions/{_seg(suggestion_id)}/interdiff"
        return await self._call("GET", path, params={"from": start, "to": end})

    async def refine(self, suggestion_id: str, *, instructions: str, refiner: str | None) -> JSON:
        body = {"id": suggestion_id, "instructions": instructions, "refiner": refiner}
        return await self._call("POST", "/suggest/llm", body=body, long=True)

    # -- plans ----------------------------------------------------------------
    async def plan(self, *, goal: str, suggestion_ids: Sequence[str] | None) -> JSON:
        ids = None if suggestion_ids is None else list(suggestion_ids)
        return await self._call(
            "POST", "/plan", body={"goal": goal, "suggestion_ids": ids}, long=True
        )

    async def list_plans(self, *, after: str | None, limit: int) -> JSON:
        return await self._call("GET", "/plans", params={"after": after, "limit": limit})

    async def get_plan(self, plan_id: str) -> JSON:
        return await self._call("GET", f"/plans/{_seg(plan_id)}")

    async def select(self, plan_id: str, *, variant: str) -> JSON:
        return await self._call("POST", f"/plans/{_seg(plan_id)}/select", body={"variant": variant})

    async def open_pr(
        self, plan_id: str, *, variant: str | None, dry_run: bool, branch: str | None = None
    ) -> JSON:
        body = {"plan_id": plan_id, "variant": variant, "dry_run": dry_run, "branch": branch}
        return await self._call("POST", "/dev/pr-from-plan", body=body, long=True)

    # -- policies -------------------------------------------------------------
    async def get_policies(self) -> JSON:
        return await self._call("GET", "/policies")

    async def set_policies(self, document: object) -> JSON:
        return await self._call("PUT", "/policies", body=document)

    async def check_diff(
        self, *, diff: str, title: str, rationale: str, base_ref: str = "HEAD"
    ) -> JSON:
        body = {"diff": diff, "title": title, "rationale": rationale, "base_ref": base_ref}
        return await self._call("POST", "/policies/check", body=body)

    # -- system ---------------------------------------------------------------
    async def plugins(self) -> JSON:
        return await self._call("GET", "/plugins")


async def _items(sse: AsyncIterator[ServerSentEvent]) -> AsyncGenerator[StreamItem, None]:
    """The stream's SSE events as stream items; its end is a lost stream (a server closes
    a stream only when it stops)."""
    async for message in sse:
        if message.event in ("ready", "reset"):
            position = json.loads(message.data)
            yield Position(
                head=int(position["head"]),
                epoch=str(position["epoch"]),
                reset=message.event == "reset",
            )
        elif message.event == "gap":
            gap = json.loads(message.data)
            yield Missed(first_id=int(gap["first_id"]), last_id=int(gap["last_id"]))
        elif message.event == "message" and message.data:
            yield json.loads(message.data)
    raise StreamLost("the server closed the stream")
