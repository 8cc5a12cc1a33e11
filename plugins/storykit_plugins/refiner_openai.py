"""Refiner ``openai-compatible``: a chat-completions model improves a suggestion.

Any server that speaks OpenAI's ``POST {base}/chat/completions`` works: OpenAI,
Ollama (``http://127.0.0.1:11434/v1``), vLLM, llama.cpp's server. It is registered
only when ``STORYKIT_LLM_BASE_URL`` and ``STORYKIT_LLM_MODEL`` are set.

For each request the model gets the rules and answer format (see
:mod:`storykit_plugins._llm`), the reviewer's instructions, the suggestion, and
the original contents of the files it touches, read from the suggestion's base
commit (never from the working tree). JSON output is asked for with
``response_format: {"type": "json_object"}``; a server that rejects that option is
asked again without it, once, and not again for the life of the refiner.

A refined diff must parse and must apply to the suggestion's base commit
(``git apply --check`` against a throwaway index, the same check the dry run
makes), or the refinement is refused with git's reason and the suggestion stays
as it was. Timeouts, refused connections, HTTP errors (with the provider's own
message), and empty, cut-off or unreadable replies are :class:`BackendError`
that say what happened; the API key never appears in one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from storykit.backends import Refinement, Refiner
from storykit.diffs import parse_diff
from storykit.errors import BackendError, Invalid
from storykit.hookspecs import hookimpl
from storykit.models import Suggestion
from storykit.settings import Settings
from storykit_plugins._git import read_blobs, repo_root, resolve_commit
from storykit_plugins._git_pr import check_applies
from storykit_plugins._http import map_httpx_errors
from storykit_plugins._llm import build_messages, parse_reply

__all__ = ["OpenAICompatibleRefiner", "storykit_register_refiners"]

# How much of the original files the model is shown, in characters: enough for the
# files a suggestion usually touches, small enough for an 8k-token local model.
CONTEXT_CHARS = 24_000


class OpenAICompatibleRefiner:
    name = "openai-compatible"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        repo_path: Path,
        work_dir: Path,
        api_key: str | None = None,
        timeout: float = 60.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        """``client`` is for tests; without it each request gets a fresh client."""
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise Invalid(
                f"STORYKIT_LLM_BASE_URL={base_url!r}: expected an http(s) URL like"
                " http://127.0.0.1:11434/v1"
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.repo_path = repo_path
        self.work_dir = work_dir
        self.timeout = timeout
        self._api_key = api_key
        self._client = client
        self._json_mode = True
        # For messages: the URL without any user:password part.
        port = f":{parts.port}" if parts.port else ""
        self._where = f"{parts.scheme}://{parts.hostname}{port}{parts.path.rstrip('/')}"

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatibleRefiner | None:
        """The refiner, or None when it is not configured at all."""
        base_url = (settings.get("STORYKIT_LLM_BASE_URL") or "").strip()
        model = (settings.get("STORYKIT_LLM_MODEL") or "").strip()
        if not base_url and not model:
            return None
        if not base_url or not model:
            have, need = (
                ("STORYKIT_LLM_MODEL", "STORYKIT_LLM_BASE_URL")
                if model
                else ("STORYKIT_LLM_BASE_URL", "STORYKIT_LLM_MODEL")
            )
            raise Invalid(f"{have} is set but {need} is not; the refiner needs both")
        raw = (settings.get("STORYKIT_LLM_TIMEOUT") or "60").strip()
        try:
            timeout = float(raw)
        except ValueError:
            timeout = math.nan
        if not 0 < timeout < math.inf:
            raise Invalid(f"STORYKIT_LLM_TIMEOUT={raw!r}: expected seconds greater than 0")
        return cls(
            base_url=base_url,
            model=model,
            api_key=(settings.get("STORYKIT_LLM_API_KEY") or "").strip() or None,
            timeout=timeout,
            repo_path=settings.repo_path,
            work_dir=settings.data_dir / "worktrees",
        )

    async def refine(self, suggestion: Suggestion, instructions: str) -> Refinement:
        repo = await repo_root(self.repo_path)
        base = await resolve_commit(repo, suggestion.base_ref)
        files, omitted = await _original_files(repo, base, suggestion.files)
        content = await self._complete(build_messages(suggestion, instructions, files, omitted))
        try:
            reply = parse_reply(content)
        except ValueError as exc:
            raise BackendError(f"the model's reply could not be used: {exc}") from None
        title = _changed(reply.title, suggestion.title)
        rationale = _changed(reply.rationale, suggestion.rationale)
        diff = _changed(reply.diff, suggestion.diff)
        if title is None and rationale is None and diff is None:
            raise BackendError(
                "the model proposed no change to the title, rationale or diff;"
                " try more specific instructions"
            )
        if diff is not None:
            await self._check_diff(repo, base, suggestion, diff)
        return Refinement(title=title, rationale=rationale, diff=diff)

    async def _check_diff(self, repo: Path, base: str, suggestion: Suggestion, diff: str) -> None:
        try:
            parse_diff(diff)
        except Invalid as exc:
            raise BackendError(f"the model's diff is not a usable unified diff: {exc}") from None
        problem = await check_applies(repo, base, diff, self.work_dir)
        if problem is not None:
            raise BackendError(
                f"the model's diff does not apply to {suggestion.base_ref} ({base[:12]}):"
                f" {problem}; the suggestion is unchanged"
            )

    # -- HTTP --------------------------------------------------------------------------
    async def _complete(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The assistant's text for ``messages``."""
        response = await self._post(messages)
        if (
            self._json_mode
            and response.status_code in (400, 422)
            and "response_format" in _provider_message(response)
        ):
            self._json_mode = False  # this server does not do JSON mode; the prompt asks anyway
            response = await self._post(messages)
        if not response.is_success:
            raise BackendError(self._http_error(response))
        try:
            data = response.json()
            choice = data["choices"][0]
            content = choice["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise BackendError(
                f"the model server at {self._where} answered with something other than a"
                f" chat completion: {response.text[:160]!r}"
            ) from None
        if choice.get("finish_reason") == "length":
            raise BackendError(
                "the model's reply was cut off at its token limit; ask for a smaller change"
                " or use a model with a larger context"
            )
        if not isinstance(content, str) or not content.strip():
            raise BackendError(f"the model ({self.model}) returned an empty reply")
        return content

    async def _post(self, messages: Sequence[Mapping[str, str]]) -> httpx.Response:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "temperature": 0.2,
            "stream": False,
        }
        if self._json_mode:
            body["response_format"] = {"type": "json_object"}
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        url = f"{self.base_url}/chat/completions"
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))
        with map_httpx_errors(
            timeout=f"the model at {self._where} did not answer within {self.timeout:g}s"
            " (STORYKIT_LLM_TIMEOUT)",
            unreachable=lambda error: (
                f"cannot reach the model at {self._where} ({error});"
                " is the server running, and is STORYKIT_LLM_BASE_URL right?"
            ),
        ):
            if self._client is not None:
                return await self._client.post(url, json=body, headers=headers, timeout=timeout)
            async with httpx.AsyncClient() as client:
                return await client.post(url, json=body, headers=headers, timeout=timeout)

    def _http_error(self, response: httpx.Response) -> str:
        status = response.status_code
        said = _provider_message(response)
        if status in (401, 403):
            return (
                f"the model server rejected the request (HTTP {status}: {said});"
                " check STORYKIT_LLM_API_KEY"
            )
        if status == 404:
            return (
                f"the model server answered 404 ({said}); check STORYKIT_LLM_BASE_URL"
                f" ({self._where}, usually ending in /v1) and STORYKIT_LLM_MODEL ({self.model})"
            )
        if status == 429:
            retry = response.headers.get("retry-after", "").strip()
            when = f"; try again in {retry}s" if retry.isdigit() else ""
            return f"the model server is rate limiting or out of quota (HTTP 429: {said}){when}"
        if status >= 500:
            return f"the model server failed (HTTP {status}: {said})"
        return f"the model server refused the request (HTTP {status}: {said})"


def _changed(new: str | None, old: str) -> str | None:
    return None if new is None or new == old or not new.strip() else new


def _provider_message(response: httpx.Response) -> str:
    """The provider's explanation: OpenAI's ``{"error": {"message"}}``, Ollama's
    ``{"error": "..."}``, vLLM's ``{"message"}``, or the start of the text."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        for value in (error, body.get("message"), body.get("detail")):
            if isinstance(value, str) and value:
                return value[:300]
    return response.reason_phrase


async def _original_files(
    repo: Path, base: str, paths: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """The suggestion's files at ``base`` as text, within :data:`CONTEXT_CHARS`."""
    names = [p for p in dict.fromkeys(paths) if "\n" not in p]
    blobs = await read_blobs(repo, [f"{base}:{p}" for p in names])
    files: dict[str, str] = {}
    omitted: list[str] = []
    room = CONTEXT_CHARS
    for path in names:
        data = blobs.get(f"{base}:{path}")
        if data is None:
            continue  # a file the suggestion adds
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            omitted.append(f"{path} (binary)")
            continue
        if len(text) > room:
            omitted.append(f"{path} (too large)")
            continue
        files[path] = text
        room -= len(text)
    return files, omitted


@hookimpl
def storykit_register_refiners(register: Callable[[Refiner], None], settings: Settings) -> None:
    """Register ``openai-compatible`` when STORYKIT_LLM_BASE_URL and STORYKIT_LLM_MODEL are set."""
    refiner = OpenAICompatibleRefiner.from_settings(settings)
    if refiner is not None:
        register(refiner)
