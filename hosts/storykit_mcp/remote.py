"""The gateway on a running server's HTTP API (``storykit mcp --url``), with an API key.

Each tool is one documented route; a refusal's problem+json ``detail`` becomes the tool
error's text. ``wait_for_review`` opens the live stream (``GET /events``) first, then
reads the suggestion, and re-reads it only when one of its events arrives.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
import httpx
from httpx_sse import SSEError, aconnect_sse

import storykit
from storykit.errors import Invalid, StorykitError
from storykit.filters import SuggestionFilter
from storykit_mcp.gateway import JSON, MAX_WAIT, settled

__all__ = ["RemoteError", "RemoteGateway"]

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0


class RemoteError(StorykitError):
    """The server refused (its problem's ``detail``) or could not be reached."""

    title = "Server error"

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def _problem(response: httpx.Response) -> RemoteError:
    detail = ""
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, Mapping):
            detail = str(body.get("detail") or body.get("title") or "")
    return RemoteError(
        response.status_code, detail or f"the server answered HTTP {response.status_code}"
    )


def _seg(value: str) -> str:
    return quote(value, safe="")


class RemoteGateway:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self._http = http
        self.url = url
        self._me: str | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, key: str) -> AsyncIterator[RemoteGateway]:
        base = url.rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Invalid(f"--url {url!r} is not an http(s) URL; use e.g. http://127.0.0.1:8001")
        headers = {"X-API-Key": key, "User-Agent": f"storykit-mcp/{storykit.__version__}"}
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
        headers: Mapping[str, str] | None = None,
    ) -> JSON:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._http.request(
                method, path, json=body, params=query, headers=headers
            )
        except httpx.TransportError as exc:
            raise RemoteError(503, f"cannot reach storykit at {self.url}: {_reason(exc)}") from exc
        if response.status_code >= 400:
            raise _problem(response)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise RemoteError(
                502, f"{self.url} did not answer with storykit's JSON; is it storykit?"
            )
        return data

    async def check_diff(
        self, *, diff: str, title: str, rationale: str, base_ref: str = "HEAD"
    ) -> JSON:
        body = {"diff": diff, "title": title, "rationale": rationale, "base_ref": base_ref}
        return await self._call("POST", "/policies/check", body=body)

    async def submit(
        self,
        *,
        title: str,
        diff: str,
        rationale: str,
        base_ref: str,
        idempotency_key: str | None,
    ) -> JSON:
        body = {"title": title, "diff": diff, "rationale": rationale, "base_ref": base_ref}
        # The server honours it wherever POST /suggestions does (SPEC §4).
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self._call("POST", "/suggestions", body=body, headers=headers)

    async def get_suggestion(self, suggestion_id: str) -> JSON:
        return await self._call("GET", f"/suggestions/{_seg(suggestion_id)}")

    async def wait_for_review(self, suggestion_id: str, *, seconds: float) -> JSON:
        stream_timeout = httpx.Timeout(MAX_WAIT + 15, connect=CONNECT_TIMEOUT)
        try:
            async with aconnect_sse(self._http, "GET", "/events", timeout=stream_timeout) as source:
                if source.response.status_code != 200:
                    await source.response.aread()
                    raise _problem(source.response)
                # The server subscribed before it answered: from here on no event is missed.
                current = await self.get_suggestion(suggestion_id)
                with anyio.move_on_after(min(seconds, MAX_WAIT)):
                    events = source.aiter_sse()
                    while not settled(current):
                        sse = await anext(events, None)
                        if sse is None:
                            break  # the server ended the stream (it is stopping)
                        if sse.event == "gap" or (
                            sse.event == "message" and _names(sse.data, current["id"])
                        ):
                            current = await self.get_suggestion(suggestion_id)
        except (httpx.TransportError, SSEError) as exc:
            raise RemoteError(503, f"cannot reach storykit at {self.url}: {_reason(exc)}") from exc
        return current

    async def revise(self, suggestion_id: str, *, diff: str, rationale: str | None) -> JSON:
        body = {"diff": diff, "rationale": rationale}
        return await self._call("POST", f"/suggestions/{_seg(suggestion_id)}/revisions", body=body)

    async def list_revisions(self, suggestion_id: str) -> JSON:
        return await self._call("GET", f"/suggestions/{_seg(suggestion_id)}/revisions")

    async def interdiff(self, suggestion_id: str, *, start: int | None) -> JSON:
        path = f"/suggestions/{_seg(suggestion_id)}/interdiff"
        return await self._call("GET", path, params={"from": start})

    async def list_mine(self, *, status: str | None, after: str | None, limit: int) -> JSON:
        if self._me is None:
            self._me = str((await self._call("GET", "/me"))["name"])
        where = SuggestionFilter.parse({"agent": self._me, "status": status})
        params = where.params() | {"after": after, "limit": limit}
        return await self._call("GET", "/suggestions", params=params)


def _names(data: str, suggestion_id: str) -> bool:
    """Whether the event ``data`` is about ``suggestion_id``."""
    try:
        event = json.loads(data)
    except ValueError:
        return False
    return isinstance(event, dict) and (event.get("data") or {}).get("id") == suggestion_id


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return str(exc) or type(exc).__name__
