"""Remote mode against a real server process: the same commands, the same output."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from cli_helpers import (
    ADMIN_KEY,
    AGENT_KEY,
    DEADLINE,
    REVIEWER_KEY,
    LineReader,
    Server,
    diff_text,
    free_port,
    normalise,
    one_error_line,
    shape,
    storykit,
    subprocess_env,
)

from storykit_cli import watch
from storykit_cli._remote import RemoteTransport
from storykit_cli.user import local_user

pytestmark = pytest.mark.usefixtures("local_env")

Servers = Callable[..., Server]


def scenario(*connection: str, tmp_path: Path) -> dict[str, Any]:
    """Every use case in order, as the JSON and the text each command printed."""
    out: dict[str, Any] = {}

    def step(
        name: str, *args: str, input: str | None = None, code: int = 0, json_first: bool = False
    ) -> Any:
        if json_first:  # its JSON is what later steps read (the text run then repeats it)
            as_json = storykit(*connection, *args, "--json", input=input)
            as_text = storykit(*connection, *args, input=input)
        else:
            as_text = storykit(*connection, *args, input=input)
            as_json = storykit(*connection, *args, "--json", input=input)
        assert as_text.exit_code == code, (name, as_text.output)
        assert as_json.exit_code == code, (name, as_json.output)
        data = json.loads(as_json.stdout)
        out[name] = (data, as_text.stdout)
        return data

    # Only the JSON run of a step that changes state counts; the text run repeats it.
    # Generate stores what is new only: the JSON run makes them, the text run finds them open.
    generated = step("generate", "suggest", "generate", json_first=True)
    ids = [s["id"] for s in generated["items"]]  # a.py's, then b.py's
    step("list", "suggest", "list", "--source", "fake", "--limit", "2")
    step("show", "suggest", "show", ids[0])
    for suggestion_id in ids:
        step("approve", "suggest", "review", suggestion_id, "--approve")
    plan = step(
        "plan",
        "plan",
        "create",
        "--goal",
        "Everything",
        *(arg for i in ids for arg in ("--suggestion", i)),
    )
    step("plans", "plan", "list", "--limit", "1")
    step("plan-show", "plan", "show", plan["id"])
    step("select", "plan", "select", plan["id"], "all")
    step("pr", "pr", plan["id"])
    step("pr-real", "pr", plan["id"], "--no-dry-run")
    step("policy", "policy", "show")
    policies = tmp_path / "policies.json"
    policies.write_text(json.dumps({"deny-word": {"word": "TODO"}}), encoding="utf-8")
    step("policy-set", "policy", "set", str(policies))
    step("check", "policy", "check", "-", input=diff_text(added="# TODO"), code=1)
    step("plugins", "plugins")
    step("events", "events", "--limit", "3")
    return out


def test_remote_output_equals_local_output(servers: Servers, tmp_path: Path) -> None:
    local = scenario(tmp_path=tmp_path)
    server = servers()
    remote = scenario("--url", server.url, "--key", ADMIN_KEY, tmp_path=tmp_path)
    assert local.keys() == remote.keys()
    for name in local:
        (local_json, local_text), (remote_json, remote_text) = local[name], remote[name]
        assert shape(local_json) == shape(remote_json), name
        # Line order aside: ids made in the same millisecond sort by their random part.
        local_lines = sorted(normalise(local_text, local_user()).splitlines())
        assert local_lines == sorted(normalise(remote_text, "alice").splitlines()), name
    # Both talk about the same things: the same fake plugin, the same policy answers.
    assert remote["plugins"][0]["plugins"] == local["plugins"][0]["plugins"]
    assert remote["check"][0]["outcome"] == "deny"
    assert remote["pr-real"][0]["url"] == "https://forge.invalid/pulls/1"


def test_remote_roles_and_agents(servers: Servers) -> None:
    server = servers()
    agent = ("--url", server.url, "--key", AGENT_KEY)
    reviewer = ("--url", server.url, "--key", REVIEWER_KEY)
    result = storykit(
        *agent, "suggest", "submit", "-", "-t", "From bot", "--json", input=diff_text()
    )
    assert result.exit_code == 0, result.output
    submitted = json.loads(result.stdout)
    assert submitted["agent"] == "bot" and submitted["source"] == "api"
    revised = storykit(
        *agent, "suggest", "revise", submitted["id"], "-", "--json", input=diff_text(added="a = 3")
    )
    assert json.loads(revised.stdout)["revision"] == 2
    line = one_error_line(storykit(*agent, "suggest", "review", submitted["id"], "--approve"), 1)
    assert "this needs the reviewer role; key 'bot' is agent" in line
    approved = storykit(*reviewer, "suggest", "review", submitted["id"], "--approve", "--json")
    assert json.loads(approved.stdout)["status"] == "approved"
    line = one_error_line(storykit(*reviewer, "policy", "set", "-", input="{}"), 1)
    assert "this needs the admin role" in line


def test_remote_errors_are_one_line(servers: Servers) -> None:
    server = servers()
    admin = ("--url", server.url, "--key", ADMIN_KEY)
    line = one_error_line(storykit(*admin, "suggest", "show", "sug_01M87HY64GX50BG88SFS5HKAQR"), 1)
    assert "no suggestion 'sug_01M87HY64GX50BG88SFS5HKAQR'" in line and "check the id" in line
    line = one_error_line(storykit("--url", server.url, "--key", "wrong-key-123", "plugins"), 1)
    assert line == "error: unknown API key; check --key or STORYKIT_API_KEY"
    line = one_error_line(
        storykit(*admin, "policy", "set", "-", input='{"deny-word": {"word": 1}}'), 1
    )
    assert "word must be a non-empty string" in line
    assert "no refiner is configured" in one_error_line(
        storykit(*admin, "suggest", "refine", "sug_01M87HY64GX50BG88SFS5HKAQR"), 4
    )
    line = one_error_line(storykit("--url", server.url, "plugins"), 1)
    assert "no API key for --url" in line
    for result in (
        storykit(*admin, "plugins", "--json"),
        storykit("--url", server.url, "--key", "wrong-key-123", "plugins"),
    ):
        assert ADMIN_KEY not in result.output and "wrong-key-123" not in result.output


def test_a_pasted_key_is_trimmed_and_a_bad_one_is_never_echoed(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = servers()
    padded = f"  {ADMIN_KEY} \n"
    assert storykit("--url", server.url, "--key", padded, "plugins").exit_code == 0
    monkeypatch.setenv("STORYKIT_API_KEY", f"\t{ADMIN_KEY}  ")
    assert storykit("--url", server.url, "plugins").exit_code == 0
    monkeypatch.delenv("STORYKIT_API_KEY")
    for bad in (f"{ADMIN_KEY[:10]}\x07{ADMIN_KEY[10:]}", f"{ADMIN_KEY[:10]} {ADMIN_KEY[10:]}"):
        for debug in ((), ("--debug",)):
            result = storykit(*debug, "--url", server.url, "--key", bad, "plugins")
            line = one_error_line(result, 1)
            assert "the API key has a space or a control character in it" in line
            assert ADMIN_KEY[:10] not in result.output and ADMIN_KEY[10:] not in result.output


def test_a_retried_remote_submit_with_an_idempotency_key_stores_one(servers: Servers) -> None:
    server = servers()
    agent = ("--url", server.url, "--key", AGENT_KEY)
    submit = (*agent, "suggest", "submit", "-", "--json", "-t", "Once", "--idempotency-key")
    first = storykit(*submit, "job-7", input=diff_text())
    again = storykit(*submit, "job-7", input=diff_text())
    assert first.exit_code == again.exit_code == 0, first.output + again.output
    assert json.loads(again.stdout) == json.loads(first.stdout)
    listed = json.loads(storykit(*agent, "suggest", "list", "--json").stdout)
    assert len(listed["items"]) == 1
    bad = storykit(*submit, "job 7", input=diff_text())
    assert "--idempotency-key must be printable ASCII" in one_error_line(bad, 2)


def test_no_error_or_traceback_the_cli_prints_holds_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def leaky(self: RemoteTransport) -> Any:
        raise RuntimeError(f"boom with {ADMIN_KEY} and {ADMIN_KEY.encode()!r}")

    monkeypatch.setattr(RemoteTransport, "plugins", leaky)
    url = "http://127.0.0.1:9"
    line = one_error_line(storykit("--url", url, "--key", f" {ADMIN_KEY} ", "plugins"), 5)
    assert "RuntimeError: boom with *** and b'***'" in line
    result = storykit("--debug", "--url", url, "--key", ADMIN_KEY, "plugins")
    assert result.exit_code == 5 and "Traceback" in result.stderr
    assert ADMIN_KEY not in result.output


def test_rate_limited_calls_say_when_to_try_again(servers: Servers) -> None:
    server = servers(RATE_LIMIT_RPS="0.01", RATE_LIMIT_BURST="1")
    admin = ("--url", server.url, "--key", ADMIN_KEY)
    assert storykit(*admin, "plugins").exit_code == 0
    line = one_error_line(storykit(*admin, "plugins"), 1)
    assert "more than" in line and line.endswith("s and try again")


def test_an_unreachable_server_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = one_error_line(storykit("--url", url, "--key", ADMIN_KEY, "suggest", "list"), 3)
    assert f"cannot reach {url}" in line and "storykit serve" in line
    line = one_error_line(storykit("--url", "ftp://example.invalid", "--key", "k", "plugins"), 2)
    assert "not an http(s) URL" in line


def test_remote_generate_shows_progress_from_the_event_stream(servers: Servers) -> None:
    server = servers()
    result = storykit("--url", server.url, "--key", ADMIN_KEY, "suggest", "generate", "--progress")
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if line.startswith("fake")]
    assert progress == [
        "fake  [##########··········]  1/2  scan",
        "fake  [####################]  2/2  scan",
    ]
    assert "created 2 suggestions" in result.stdout


def test_events_follow_resumes_after_the_server_restarts(
    servers: Servers,
    local_env: Path,
    repo: Path,
    plugin_path: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = servers()
    admin = ("--url", server.url, "--key", ADMIN_KEY)
    env = subprocess_env({"STORYKIT_URL": server.url, "STORYKIT_API_KEY": ADMIN_KEY}, plugin_path)
    command = [sys.executable, "-m", "storykit_cli", "events", "--follow", "--json", "--after", "0"]
    follower = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        lines = LineReader(follower.stdout)  # type: ignore[arg-type]
        assert (
            storykit(*admin, "policy", "set", "-", input='{"deny-word": {"word": "A"}}').exit_code
            == 0
        )
        assert json.loads(lines.next())["id"] == 1

        server.stop()
        # While the server is down, the same data directory changes locally …
        monkeypatch.setenv("STORYKIT_DATA_DIR", str(server.data_dir))
        assert storykit("policy", "set", "-", input='{"deny-word": {"word": "B"}}').exit_code == 0
        server.start()  # … and after the restart, through the server again.
        assert (
            storykit(*admin, "policy", "set", "-", input='{"deny-word": {"word": "C"}}').exit_code
            == 0
        )

        seen = [json.loads(lines.next()), json.loads(lines.next())]
        assert [e["id"] for e in seen] == [2, 3]
        assert [e["data"]["by"] for e in seen] == [local_user(), "alice"]
    finally:
        follower.terminate()
        follower.wait(timeout=DEADLINE)
        stderr = follower.stderr.read()  # type: ignore[union-attr]
        follower.stdout.close()  # type: ignore[union-attr]
        follower.stderr.close()  # type: ignore[union-attr]
    lines.join()
    assert "lost the event stream" in stderr and "reconnected" in stderr
    assert ADMIN_KEY not in stderr


def sse_reply(*blocks: str) -> httpx.Response:
    return httpx.Response(
        200,
        headers={"content-type": "text/event-stream"},
        content="".join(block + "\n\n" for block in blocks).encode(),
    )


def event_block(event_id: int) -> str:
    data = {"id": event_id, "type": "t", "at": "2026-01-01T00:00:00+00:00", "data": {}}
    return f"id: {event_id}\ndata: {json.dumps(data)}"


Handler = Callable[[httpx.Request], httpx.Response]


def follow(handler: Handler, after: int | None, count: int) -> Any:
    """The first ``count`` events ``watch.follow`` yields, and the notices it gave."""
    notices: list[str] = []

    async def main() -> list[int]:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            remote = RemoteTransport(http, "http://test")
            got: list[int] = []
            with anyio.fail_after(DEADLINE):
                followed = watch.follow(remote, after=after, on_notice=notices.append)
                async with contextlib.aclosing(followed) as events:
                    async for event in events:
                        got.append(int(event["id"]))
                        if len(got) == count:
                            break
            return got

    return anyio.run(main), notices


def test_following_from_now_starts_at_the_ready_head_and_resumes_with_the_epoch() -> None:
    """Without --after, the follower starts where the stream's `ready` says, and a
    reconnect resumes after the last event with the log's epoch."""
    asked: list[tuple[str | None, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append((request.headers.get("last-event-id"), request.url.params.get("epoch")))
        if len(asked) == 1:  # a stream that ends after one event
            ready = 'retry: 2000\nevent: ready\ndata: {"head": 7, "epoch": "e1"}'
            return sse_reply(ready, event_block(8))
        return sse_reply('event: ready\ndata: {"head": 9, "epoch": "e1"}', event_block(9))

    got, notices = follow(handler, None, 2)
    assert got == [8, 9]
    assert asked == [(None, None), ("8", "e1")]
    assert any("lost the event stream" in n for n in notices)


def test_following_past_the_end_of_the_log_is_reset_to_its_head() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["last-event-id"] == "100"
        position = '{"head": 5, "epoch": "e1"}'
        return sse_reply(
            f"event: ready\ndata: {position}", f"event: reset\ndata: {position}", event_block(6)
        )

    got, notices = follow(handler, 100, 1)
    assert got == [6]
    assert notices == [
        "event 100 is not in the event log (its newest is 5; a replaced or restored"
        " database?); following from there"
    ]
