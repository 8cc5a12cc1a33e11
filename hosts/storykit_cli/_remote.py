"""The remote client: a running storykit server over HTTP, with an API key.

The key travels only in the ``X-API-Key`` header (never in a URL, an error message
or a log line). Errors come back as problem+json; their ``detail`` is what the
user sees. The live stream (``GET /events``) is read with httpx-sse: its ``ready``
event says where it starts (``head``) and which log it reads (``epoch``), and a
disconnect is resumed with ``Last-Event-ID`` and that epoch, so nothing is missed
across a restart and ids from a replaced database are not taken for this one's.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
import httpx
from httpx_sse import SSEError, aconnect_sse

import storykit
from storykit.errors import StorykitError
from storykit_cli.client import JSON, OnProgress, reset_notice
from storykit_cli.errors import USAGE, ConnectionFailed, Failure

__all__ = ["RemoteClient", "RemoteError"]

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
# Longer than the server's default heartbeat (15 s) with room to spare: a stream
# silent for this long is dead and gets reconnected.
STREAM_IDLE_TIMEOUT = 45.0
RECONNECT_FIRST = 0.2
RECONNECT_MOST = 5.0
_PROGRESS_GRACE = 2.0
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


class RemoteClient:
    def __init__(
        self, http: httpx.AsyncClient, url: str, on_notice: Callable[[str], None] | None
    ) -> None:
        self._http = http
        self.url = url
        self._notice = on_notice or (lambda _message: None)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, url: str, key: str | None, *, on_notice: Callable[[str], None] | None = None
    ) -> AsyncIterator[RemoteClient]:
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
            yield cls(http, base, on_notice)

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

    # -- suggestions ----------------------------------------------------------
    async def generate(
        self,
        *,
        sources: Sequence[str] | None,
        paths: Sequence[str],
        on_progress: OnProgress | None = None,
    ) -> JSON:
        body = {"sources": list(sources) if sources else None, "paths": list(paths)}
        if on_progress is None:
            return await self._call("POST", "/suggest/generate", body=body, long=True)
        connected = anyio.Event()
        finished = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_progress, on_progress, connected, finished)
            # Once the stream said `ready`, every later event of this run will reach it.
            with anyio.move_on_after(CONNECT_TIMEOUT):
                await connected.wait()
            try:
                result = await self._call("POST", "/suggest/generate", body=body, long=True)
                with anyio.move_on_after(_PROGRESS_GRACE):
                    await finished.wait()
            finally:
                tg.cancel_scope.cancel()
        return result

    async def _watch_progress(
        self, on_progress: OnProgress, connected: anyio.Event, finished: anyio.Event
    ) -> None:
        """Render progress from the live stream; best effort, never fails the command."""
        try:
            async with aconnect_sse(self._http, "GET", "/events", timeout=_LONG) as source:
                if source.response.status_code != 200:
                    return
                async for sse in source.aiter_sse():
                    if sse.event == "ready":
                        connected.set()
                    if sse.event != "message" or not sse.data:
                        continue
                    event = json.loads(sse.data)
                    if event.get("type") == "suggest.progress":
                        on_progress(event.get("data") or {})
                    elif event.get("type") == "suggest.generated":
                        finished.set()
                        return
        except (httpx.HTTPError, SSEError, ValueError):
            pass
        finally:
            connected.set()

    async def list_suggestions(
        self,
        *,
        status: str | None,
        source: str | None,
        agent: str | None,
        risk: str | None,
        after: str | None,
        limit: int,
    ) -> JSON:
        params = {
            "status": status,
            "source": source,
            "agent": agent,
            "risk": risk,
            "after": after,
            "limit": limit,
        }
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

    async def review(self, suggestion_id: str, *, action: str, comment: str) -> JSON:
        body = {"id": suggestion_id, "action": action, "comment": comment}
        return await self._call("POST", "/suggest/review", body=body)

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

    async def check_diff(self, *, diff: str, title: str, rationale: str) -> JSON:
        body = {"diff": diff, "title": title, "rationale": rationale}
        return await self._call("POST", "/policies/check", body=body)

    # -- system ---------------------------------------------------------------
    async def plugins(self) -> JSON:
        return await self._call("GET", "/plugins")

    async def read_events(self, *, after: int, limit: int) -> JSON:
        return await self._call("GET", "/events/log", params={"after": after, "limit": limit})

    async def follow_events(self, *, after: int | None) -> AsyncIterator[JSON]:
        last = after  # None: from the head the first `ready` names
        epoch: str | None = None  # the log `last` belongs to, once the server said
        delay = RECONNECT_FIRST
        lost: str | None = None
        while True:
            try:
                async with aconnect_sse(
                    self._http,
                    "GET",
                    "/events",
                    headers={} if last is None else {"Last-Event-ID": str(last)},
                    params={} if epoch is None else {"epoch": epoch},
                    timeout=httpx.Timeout(STREAM_IDLE_TIMEOUT, connect=CONNECT_TIMEOUT),
                ) as source:
                    response = source.response
                    if 400 <= response.status_code < 500:
                        await response.aread()
                        raise _problem(response)  # a bad key will not get better by retrying
                    if response.status_code != 200:
                        raise httpx.RemoteProtocolError(f"HTTP {response.status_code}")
                    if lost is not None:
                        self._notice(f"reconnected to {self.url}")
                        lost = None
                    delay = RECONNECT_FIRST
                    async for sse in source.aiter_sse():
                        if sse.event in ("ready", "reset"):
                            position = json.loads(sse.data)
                            epoch = str(position["epoch"])
                            if sse.event == "reset":
                                self._notice(reset_notice(last, int(position["head"])))
                            if sse.event == "reset" or last is None:
                                last = int(position["head"])
                        elif sse.event == "gap":
                            gap = json.loads(sse.data)
                            start = last if last is not None else int(gap["first_id"]) - 1
                            async for missed in self._replay(start, int(gap["last_id"])):
                                last = int(missed["id"])
                                yield missed
                        elif sse.event == "message" and sse.data:
                            event = json.loads(sse.data)
                            if last is None or int(event["id"]) > last:
                                last = int(event["id"])
                                yield event
                reason = "the server closed the stream"
            except (httpx.TransportError, SSEError) as exc:
                reason = _reason(exc)
            if lost is None:
                lost = reason
                self._notice(f"lost the event stream from {self.url} ({reason}); reconnecting")
            await anyio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MOST)

    async def _replay(self, after: int, until: int) -> AsyncIterator[JSON]:
        """Events ``after < id <= until`` from the log: what an overflowing queue dropped."""
        cursor = after
        while cursor < until:
            page = (await self.read_events(after=cursor, limit=1000))["items"]
            if not page:
                return
            for event in page:
                if int(event["id"]) > until:
                    return
                cursor = int(event["id"])
                yield event
