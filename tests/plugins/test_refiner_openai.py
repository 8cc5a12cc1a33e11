"""The ``openai-compatible`` refiner against recorded chat-completions responses.

Replies are replayed in the documented shape (``{"id", "object": "chat.completion",
"choices": [{"message": {"content"}, "finish_reason"}], "usage"}``) and error
bodies in ``{"error": {"message", "type", "code"}}``; the repository is real, so
"the refined diff applies" is decided by git itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import storykit_plugins.refiner_openai as refiner_module
from storykit.diffs import diff_hash
from storykit.errors import BackendError
from storykit.models import Suggestion
from storykit.plugins import Registry, get_plugin_manager
from storykit.settings import Settings
from storykit_plugins._llm import SYSTEM_PROMPT, build_messages, fence, parse_reply
from storykit_plugins.refiner_openai import OpenAICompatibleRefiner

anyio = pytest.mark.anyio
MakeReplay = Callable[..., Any]  # conftest.llm_replay
Snapshot = Callable[[Path], dict[str, str]]

KEY = "sk-proj-SECRETkey0123456789"
URL = "/v1/chat/completions"
FILES = {"app/main.py": "import os\n\n\ndef main():\n    return os.name\n", "README.md": "hi\n"}
DIFF = (
    "diff --git a/app/main.py b/app/main.py\n--- a/app/main.py\n+++ b/app/main.py\n"
    "@@ -2,4 +2,4 @@ import os\n \n \n def main():\n-    return os.name\n+    return os.sep\n"
)
REFINED = (  # recorded in completion_json.json and completion_fenced_diff.json
    "diff --git a/app/main.py b/app/main.py\n--- a/app/main.py\n+++ b/app/main.py\n"
    "@@ -1,5 +1,6 @@\n import os\n \n \n def main():\n-    return os.name\n"
    '+    """The separator of path components."""\n+    return os.sep\n'
)


def _suggestion(base_ref: str = "main") -> Suggestion:
    return Suggestion(
        id="sug-1",
        source="agent",
        agent="bot",
        title="Use os.sep",
        diff=DIFF,
        diff_hash=diff_hash(DIFF),
        files=("app/main.py",),
        rationale="Return the separator.",
        base_ref=base_ref,
    )


@pytest.fixture
def repo(repo_make: Callable[..., Path]) -> Path:
    return repo_make(FILES)


def _refiner(replay: Any, repo: Path, tmp_path: Path, **kw: Any) -> OpenAICompatibleRefiner:
    options: dict[str, Any] = {
        "base_url": "http://127.0.0.1:11434/v1/",
        "model": "gpt-4o-mini",
        "api_key": KEY,
        "repo_path": repo,
        "work_dir": tmp_path / "work",
        "client": replay.client,
    }
    return OpenAICompatibleRefiner(**(options | kw))


# -- refining -----------------------------------------------------------------------------
@anyio
async def test_a_refined_diff_that_applies_is_returned(
    repo: Path, tmp_path: Path, llm_replay: MakeReplay, repo_snapshot: Snapshot
) -> None:
    replay = llm_replay([("POST", URL, "completion_json")])
    before = repo_snapshot(repo)
    result = await _refiner(replay, repo, tmp_path).refine(_suggestion(), "Add a docstring")

    assert result.diff == REFINED
    assert result.rationale == "os.sep is the separator of path components; the docstring says so."
    assert result.title is None  # not in the reply: kept as it is
    assert repo_snapshot(repo) == before

    (sent,) = replay.requests
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = sent.json
    assert body["model"] == "gpt-4o-mini"
    assert body["response_format"] == {"type": "json_object"}
    assert body["stream"] is False
    assert body["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    user = body["messages"][1]["content"]
    assert "## Reviewer's instructions\nAdd a docstring\n" in user
    assert fence(DIFF, "diff") in user
    # The original file from the base commit, so the model can copy exact context lines.
    assert "### app/main.py\n" + fence(FILES["app/main.py"]) in user
    assert "README.md" not in user


@anyio
async def test_a_plain_fenced_diff_is_accepted(
    repo: Path, tmp_path: Path, llm_replay: MakeReplay
) -> None:
    replay = llm_replay([("POST", URL, "completion_fenced_diff")])
    result = await _refiner(replay, repo, tmp_path, api_key=None).refine(_suggestion(), "")
    assert result.diff == REFINED
    assert "authorization" not in replay.requests[0].headers


@anyio
async def test_reasoning_is_skipped_and_a_title_alone_is_a_refinement(
    repo: Path, tmp_path: Path, llm_replay: MakeReplay
) -> None:
    replay = llm_replay([("POST", URL, "completion_think_title")])
    result = await _refiner(replay, repo, tmp_path).refine(_suggestion(), "Better title")
    assert (result.title, result.rationale, result.diff) == (
        "Return the path separator from main()",
        None,
        None,
    )


@anyio
async def test_a_refined_diff_that_does_not_apply_is_refused_with_gits_reason(
    repo: Path, tmp_path: Path, llm_replay: MakeReplay, git_cmd: Callable[..., str]
) -> None:
    replay = llm_replay([("POST", URL, "completion_not_applying")])
    base = git_cmd(repo, "rev-parse", "main").strip()
    with pytest.raises(BackendError) as caught:
        await _refiner(replay, repo, tmp_path).refine(_suggestion(), "Add a docstring")
    detail = caught.value.detail
    assert detail.startswith(f"the model's diff does not apply to main ({base[:12]}): ")
    assert "app/main.py" in detail and "patch does not apply" in detail
    assert detail.endswith("; the suggestion is unchanged")


@anyio
async def test_the_base_commit_is_used_not_the_working_tree(
    repo: Path,
    tmp_path: Path,
    llm_replay: MakeReplay,
    git_cmd: Callable[..., str],
    repo_write: Callable[..., None],
) -> None:
    base = git_cmd(repo, "rev-parse", "HEAD").strip()
    repo_write(repo, {"app/main.py": "changed later\n"})
    git_cmd(repo, "commit", "-qam", "later")
    repo_write(repo, {"app/main.py": "uncommitted\n"})
    replay = llm_replay([("POST", URL, "completion_json")])
    result = await _refiner(replay, repo, tmp_path).refine(_suggestion(base), "Add a docstring")
    assert result.diff == REFINED
    assert "import os" in replay.requests[0].json["messages"][1]["content"]


@anyio
async def test_a_server_without_json_mode_is_asked_again_without_it(
    repo: Path, tmp_path: Path, llm_replay: MakeReplay
) -> None:
    replay = llm_replay(
        [
            ("POST", URL, "error_response_format"),
            ("POST", URL, "completion_json"),
            ("POST", URL, "completion_json"),
        ]
    )
    refiner = _refiner(replay, repo, tmp_path)
    assert (await refiner.refine(_suggestion(), "docstring")).diff == REFINED
    assert (await refiner.refine(_suggestion(), "docstring")).diff == REFINED
    sent = [r.json for r in replay.requests]
    assert "response_format" in sent[0]
    assert "response_format" not in sent[1] and "response_format" not in sent[2]


# -- failures -------------------------------------------------------------------------------
@anyio
@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("error_401", r"rejected the request \(HTTP 401: Incorrect API key provided: sk-proj-\*"),
        ("error_429", r"rate limiting or out of quota \(HTTP 429: Rate limit reached .*in 20s\.\)"),
        ("error_500", r"server failed \(HTTP 500: The server had an error"),
        ("error_model_not_found", r"404 \(model \"llama9\" not found.*STORYKIT_LLM_MODEL"),
        ("completion_empty", r"returned an empty reply"),
        ("completion_length", r"cut off at its token limit"),
        ("completion_no_change", r"proposed no change to the title, rationale or diff"),
        ("completion_prose", r"could not be used: expected a JSON object.*The change looks fine"),
    ],
)
async def test_errors_say_what_happened(
    repo: Path, tmp_path: Path, llm_replay: MakeReplay, answer: str, message: str
) -> None:
    replay = llm_replay([("POST", URL, answer)])
    with pytest.raises(BackendError, match=message) as caught:
        await _refiner(replay, repo, tmp_path).refine(_suggestion(), "Add a docstring")
    assert KEY not in str(caught.value)


@anyio
async def test_a_429_says_when_to_try_again(
    repo: Path, tmp_path: Path, llm_replay: MakeReplay
) -> None:
    replay = llm_replay([("POST", URL, "error_429")])
    with pytest.raises(BackendError, match=r"try again in 20s$"):
        await _refiner(replay, repo, tmp_path).refine(_suggestion(), "x")


@anyio
@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            httpx.ReadTimeout("read timed out"),
            r"the model at http://127\.0\.0\.1:11434/v1 did not answer within 7s "
            r"\(STORYKIT_LLM_TIMEOUT\)",
        ),
        (httpx.ConnectError("[Errno 111] Connection refused"), r"cannot reach the model at"),
    ],
)
async def test_timeouts_and_refused_connections(
    repo: Path, tmp_path: Path, llm_replay: MakeReplay, error: Exception, message: str
) -> None:
    replay = llm_replay([("POST", URL, error)])
    with pytest.raises(BackendError, match=message):
        await _refiner(replay, repo, tmp_path, timeout=7.0).refine(_suggestion(), "x")


@anyio
async def test_credentials_in_the_base_url_are_not_shown(
    repo: Path, tmp_path: Path, llm_replay: MakeReplay
) -> None:
    replay = llm_replay([("POST", URL, httpx.ConnectError("refused"))])
    refiner = _refiner(replay, repo, tmp_path, base_url="http://user:hunter2@127.0.0.1:11434/v1")
    with pytest.raises(BackendError) as caught:
        await refiner.refine(_suggestion(), "x")
    assert "hunter2" not in caught.value.detail


# -- registration ----------------------------------------------------------------------------
def _registry(tmp_path: Path, env: dict[str, str]) -> Registry:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(refiner_module, name="openai")
    return Registry(pm, Settings.from_env(env, data_dir=tmp_path / "data"))


def test_registered_only_when_configured(tmp_path: Path) -> None:
    assert _registry(tmp_path, {}).refiners == {}
    env = {
        "STORYKIT_LLM_BASE_URL": "http://127.0.0.1:11434/v1",
        "STORYKIT_LLM_MODEL": "qwen2.5-coder:7b",
        "STORYKIT_LLM_TIMEOUT": "90",
    }
    registry = _registry(tmp_path, env)
    refiner = registry.refiners["openai-compatible"].backend
    assert isinstance(refiner, OpenAICompatibleRefiner)
    assert (refiner.model, refiner.timeout) == ("qwen2.5-coder:7b", 90.0)
    assert refiner.work_dir == tmp_path / "data" / "worktrees"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STORYKIT_LLM_MODEL": "m"}, "STORYKIT_LLM_MODEL is set but STORYKIT_LLM_BASE_URL is not"),
        (
            {
                "STORYKIT_LLM_BASE_URL": "http://x/v1",
                "STORYKIT_LLM_MODEL": "m",
                "STORYKIT_LLM_TIMEOUT": "soon",
            },
            "STORYKIT_LLM_TIMEOUT='soon'",
        ),
        ({"STORYKIT_LLM_BASE_URL": "localhost:11434", "STORYKIT_LLM_MODEL": "m"}, "http(s) URL"),
    ],
)
def test_half_or_bad_configuration_is_a_visible_plugin_failure(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    registry = _registry(tmp_path, env)
    assert registry.refiners == {}
    (failure,) = registry.failures
    assert failure.plugin == "openai" and message in failure.message


# -- the prompt and the parser on their own -----------------------------------------------------
def test_the_reply_parser_reads_what_models_actually_send() -> None:
    wrapped = json.dumps({"diff": "```diff\n" + DIFF + "```"})
    assert parse_reply(wrapped).diff == DIFF
    prose = 'Sure! Here it is:\n{"rationale": "Shorter."}\nHope that helps.'
    assert parse_reply(prose).rationale == "Shorter."
    assert parse_reply(DIFF.rstrip("\n")).diff == DIFF
    with pytest.raises(ValueError, match='"diff" must be a string'):
        parse_reply('{"diff": ["a"]}')
    with pytest.raises(ValueError, match="empty"):
        parse_reply("<think>hmm</think>")


def test_fences_cannot_be_closed_by_the_content() -> None:
    text = "a\n```\nb\n"
    assert fence(text) == "````\na\n```\nb\n````"
    messages = build_messages(_suggestion(), "", {}, ["logo.png (binary)"])
    assert "(none available)" in messages[1]["content"]
    assert "Not shown: logo.png (binary)" in messages[1]["content"]
