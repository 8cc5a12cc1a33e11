"""Every command in local mode: the core in-process on a temporary data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import (
    DEADLINE,
    LineReader,
    diff_text,
    ok_json,
    one_error_line,
    storykit,
    subprocess_env,
)

from storykit.auth import parse_api_tokens
from storykit_cli.user import local_user

pytestmark = pytest.mark.usefixtures("local_env")


def generate() -> list[str]:
    """Run the fake source; the ids of the two suggestions it proposes."""
    data = ok_json("suggest", "generate")
    return [s["id"] for s in data["items"]]


def approve_all() -> list[str]:
    ids = generate()
    for suggestion_id in ids:
        ok_json("suggest", "review", suggestion_id, "--approve")
    return ids


# -- suggestions ---------------------------------------------------------------------
def test_generate_prints_a_table_and_json_is_the_api_shape() -> None:
    result = storykit("suggest", "generate")
    assert result.exit_code == 0, result.output
    assert "created 2 suggestions" in result.stdout
    assert "Mark a.py as reviewed" in result.stdout and "pending" in result.stdout
    data = ok_json("suggest", "generate")  # the same proposals again: none stored twice
    assert set(data) == {"items", "count", "unchanged", "superseded", "errors"}
    assert (data["count"], data["unchanged"], data["errors"]) == (0, 2, [])
    assert "created 0 suggestions, 2 unchanged" in storykit("suggest", "generate").stdout


def test_generate_shows_progress_on_stderr_when_asked() -> None:
    result = storykit("suggest", "generate", "--progress", "--source", "fake", "a.py", "b.py")
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if line.startswith("fake")]
    assert progress[-1].endswith("2/2  scan"), result.stderr
    assert "1/2" in progress[0]
    assert "fake" not in result.stdout.split("\n")[0]  # progress stays off stdout


def test_generate_is_quiet_off_a_terminal_and_limits_to_paths() -> None:
    result = storykit("suggest", "generate", "b.py", "--json")
    assert result.exit_code == 0 and result.stderr == ""
    assert [s["files"] for s in json.loads(result.stdout)["items"]] == [["b.py"]]


def test_generate_with_an_unknown_source_fails_in_one_line() -> None:
    line = one_error_line(storykit("suggest", "generate", "--source", "nope"), 1)
    assert "unknown source(s) 'nope'" in line and "available: fake" in line


def test_a_failing_source_is_reported_and_exits_4(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLI_FAKES_BROKEN", "1")
    result = storykit("suggest", "generate")
    assert result.exit_code == 4
    assert "created 2 suggestions" in result.stdout  # what the other sources made is kept
    assert "the broken source broke" in result.stderr and "Traceback" not in result.output
    data = json.loads(storykit("suggest", "generate", "--source", "broken", "--json").stdout)
    assert data["count"] == 0 and "the broken source broke" in data["errors"][0]


def test_list_filters_pages_and_says_how_to_get_the_next_page() -> None:
    ids = generate()
    page = ok_json("suggest", "list")
    assert set(page) == {"items", "next_after", "head"} and page["next_after"] is None
    assert page["head"] == 3  # two progress events and suggest.generated: all in the list
    assert {s["id"] for s in page["items"]} == set(ids)
    first = ok_json("suggest", "list", "--limit", "1")
    assert len(first["items"]) == 1 and first["next_after"] == first["items"][0]["id"]
    text = storykit("suggest", "list", "--limit", "1").stdout
    assert f"add --after {first['next_after']}" in text
    rest = ok_json("suggest", "list", "--after", first["next_after"])
    assert [s["id"] for s in first["items"] + rest["items"]] == [s["id"] for s in page["items"]]
    assert ok_json("suggest", "list", "--status", "approved")["items"] == []
    assert len(ok_json("suggest", "list", "--source", "fake", "--risk", "low")["items"]) == 2
    assert storykit("suggest", "list", "--status", "approved").stdout.strip() == "no suggestions"


def test_list_refuses_an_unknown_status_as_a_usage_error() -> None:
    result = storykit("suggest", "list", "--status", "great")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_show_renders_the_diff_and_can_leave_it_out() -> None:
    suggestion_id = generate()[0]
    text = storykit("suggest", "show", suggestion_id).stdout
    assert suggestion_id in text and "status    pending" in text
    assert "+# reviewed" in text and "@@" in text
    assert "+# reviewed" not in storykit("suggest", "show", suggestion_id, "--no-diff").stdout
    data = ok_json("suggest", "show", suggestion_id)
    assert data["id"] == suggestion_id and data["diff"].endswith("+# reviewed\n")


def test_diffs_are_coloured_for_a_terminal_and_plain_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    suggestion_id = generate()[0]
    coloured = storykit("suggest", "show", suggestion_id, color=True).stdout
    assert "\x1b[32m+# reviewed" in coloured  # added: green
    assert "\x1b[36m@@" in coloured  # hunk header: cyan
    plain = storykit("suggest", "show", suggestion_id).stdout  # not a terminal
    assert "\x1b[" not in plain
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in storykit("suggest", "show", suggestion_id, color=True).stdout


def test_submit_from_a_file_and_from_stdin(tmp_path: Path) -> None:
    patch = tmp_path / "fix.diff"
    patch.write_text(diff_text(), encoding="utf-8")
    result = storykit("suggest", "submit", str(patch), "--title", "Check a", "-r", "why")
    assert result.exit_code == 0, result.output
    assert "pending" in result.stdout and "Check a" in result.stdout
    data = ok_json("suggest", "submit", "-", "-t", "From stdin", input=diff_text())
    assert data["title"] == "From stdin" and data["agent"] == local_user()
    assert data["source"] == "api" and data["status"] == "pending"


def test_a_blocked_submission_shows_why() -> None:
    result = storykit("suggest", "submit", "-", "-t", "Bad", input=diff_text(added="FORBIDDEN"))
    assert result.exit_code == 0, result.output
    assert "blocked" in result.stdout
    assert "added line contains 'FORBIDDEN'" in result.stdout


def test_submit_errors_missing_file_bad_diff_and_missing_title(tmp_path: Path) -> None:
    missing = storykit("suggest", "submit", str(tmp_path / "nope.diff"), "-t", "x")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.output
    line = one_error_line(storykit("suggest", "submit", "-", "-t", "x", input="not a diff\n"), 1)
    assert "diff" in line
    line = one_error_line(storykit("suggest", "submit", "-", "-t", "x", input=""), 1)
    assert "diff is required" in line
    binary = tmp_path / "binary.diff"
    binary.write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8" in one_error_line(storykit("suggest", "submit", str(binary), "-t", "x"), 1)
    assert storykit("suggest", "submit", "-", input=diff_text()).exit_code == 2


def test_revise_replaces_the_diff_of_your_own_suggestion(tmp_path: Path) -> None:
    original = ok_json("suggest", "submit", "-", "-t", "Mine", input=diff_text())
    revised = ok_json(
        "suggest", "revise", original["id"], "-", "-r", "better", input=diff_text(added="a = 10")
    )
    assert revised["id"] == original["id"] and revised["revision"] == 2
    assert revised["rationale"] == "better" and "+a = 10" in revised["diff"]
    someone_elses = generate()[0]
    line = one_error_line(storykit("suggest", "revise", someone_elses, "-", input=diff_text()), 1)
    assert "only the proposer" in line


def test_submit_and_revise_with_an_idempotency_key_are_safe_to_retry() -> None:
    first = ok_json(
        "suggest", "submit", "-", "-t", "Once", "--idempotency-key", "job-1", input=diff_text()
    )
    again = ok_json(
        "suggest", "submit", "-", "-t", "Once", "--idempotency-key", "job-1", input=diff_text()
    )
    assert again == first
    assert len(ok_json("suggest", "list")["items"]) == 1
    line = one_error_line(
        storykit(
            "suggest", "submit", "-", "-t", "Other", "--idempotency-key", "job-1", input=diff_text()
        ),
        1,
    )
    assert "'job-1' was already used for a different request" in line
    args = ("suggest", "revise", first["id"], "-", "--idempotency-key", "job-2")
    revised = ok_json(*args, input=diff_text(added="a = 10"))
    assert ok_json(*args, input=diff_text(added="a = 10")) == revised
    assert ok_json("suggest", "show", first["id"])["revision"] == 2


def test_review_approve_revise_reject() -> None:
    first, second = generate()
    approved = ok_json("suggest", "review", first, "--approve")
    assert approved["status"] == "approved"
    assert approved["reviews"][-1]["reviewer"] == local_user()
    text = storykit("suggest", "review", second, "--revise", "-m", "shorter").stdout
    assert "revision_requested" in text
    assert ok_json("suggest", "review", second, "--reject", "-m", "no")["status"] == "rejected"
    shown = storykit("suggest", "show", second).stdout
    assert "revise: shorter" in shown and "reject: no" in shown


def test_review_errors() -> None:
    suggestion_id = generate()[0]
    no_comment = storykit("suggest", "review", suggestion_id, "--revise")
    assert no_comment.exit_code == 2 and '--revise needs -m "what to change"' in no_comment.stderr
    missing_action = storykit("suggest", "review", suggestion_id)
    assert (
        missing_action.exit_code == 2 and "--approve, --revise or --reject" in missing_action.stderr
    )
    two = storykit("suggest", "review", suggestion_id, "--approve", "--reject")
    assert two.exit_code == 2 and "give only one of" in two.stderr
    own = ok_json("suggest", "submit", "-", "-t", "Mine", input=diff_text())
    line = one_error_line(storykit("suggest", "review", own["id"], "--approve"), 1)
    assert "proposed this suggestion, and nobody approves their own proposal" in line
    assert "another person's key" in line
    assert "with the role this needs" not in line  # not about the key's role


def test_unknown_ids_fail_in_one_line_with_a_hint() -> None:
    line = one_error_line(storykit("suggest", "show", "sug_01M87HY64GX50BG88SFS5HKAQR"), 1)
    assert line == (
        "error: no suggestion 'sug_01M87HY64GX50BG88SFS5HKAQR'; check the id"
        " (`storykit suggest list`, `storykit plan list`)"
    )
    assert "not a storykit id" in one_error_line(storykit("suggest", "show", "nope"), 1)
    assert "no plan" in one_error_line(
        storykit("plan", "show", "plan_01M87HY64GX50BG88SFS5HKAQR"), 1
    )


def test_debug_shows_the_traceback() -> None:
    result = storykit("--debug", "suggest", "show", "nope")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: suggestion id 'nope'")


def test_a_bug_is_one_line_exit_5_and_no_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from storykit_cli import render

    def broken(page: object) -> str:
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(render, "suggestion_table", broken)
    line = one_error_line(storykit("suggest", "list"), 5)
    assert "internal error: RuntimeError: renderer exploded" in line and "--debug" in line


def test_refine_needs_a_refiner_then_makes_a_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    suggestion_id = generate()[0]
    line = one_error_line(storykit("suggest", "refine", suggestion_id), 4)
    assert "no refiner is configured" in line
    monkeypatch.setenv("CLI_FAKES_REFINER", "1")
    refined = ok_json("suggest", "refine", suggestion_id, "-i", "say more")
    assert refined["title"] == "Mark a.py as reviewed (refined)"
    assert refined["rationale"] == "say more" and refined["revision"] == 2


# -- plans and PRs -------------------------------------------------------------------
def test_plan_create_list_show_select_and_pr() -> None:
    first, second = approve_all()
    plan = ok_json("plan", "create", "--goal", "Review everything")
    assert [v["key"] for v in plan["variants"]] == ["all", "first"]
    assert sorted(plan["variants"][0]["suggestion_ids"]) == sorted([first, second])
    text = storykit("plan", "create", "-g", "Only one", "--suggestion", second).stdout
    assert "Only one" in text and "choose one: storykit plan select" in text

    listed = ok_json("plan", "list")
    assert set(listed) == {"items", "next_after", "head"} and len(listed["items"]) == 2
    assert listed["head"] == ok_json("events", "--limit", "1")["head"]
    assert "Review everything" in storykit("plan", "list").stdout

    shown = storykit("plan", "show", plan["id"], "--diff").stdout
    assert "variant all:" in shown and "+# reviewed" in shown
    selected = ok_json("plan", "select", plan["id"], "first")
    assert selected["selected"] == "first" and selected["selected_by"] == local_user()
    assert "* first" in storykit("plan", "show", plan["id"]).stdout

    dry = storykit("pr", plan["id"])
    assert dry.exit_code == 0, dry.output
    assert "dry run (dry-run): would create branch storykit/" in dry.stdout
    assert "nothing was changed" in dry.stdout and "+# reviewed" in dry.stdout
    data = ok_json("pr", plan["id"], "--variant", "all")
    assert data["dry_run"] is True and data["variant"] == "all" and data["url"] is None
    real = ok_json("pr", plan["id"], "--no-dry-run")
    assert real["dry_run"] is False and real["backend"] == "fake-pr"
    assert real["url"] == "https://forge.invalid/pulls/1"
    assert (
        "url     https://forge.invalid/pulls/1" in storykit("pr", plan["id"], "--no-dry-run").stdout
    )


def test_plan_errors() -> None:
    line = one_error_line(storykit("plan", "create", "--goal", "x"), 1)
    assert "no approved suggestions" in line
    approve_all()
    plan = ok_json("plan", "create", "--goal", "x")
    assert "has no variant 'nope'" in one_error_line(
        storykit("plan", "select", plan["id"], "nope"), 1
    )
    assert "no variant given and none selected" in one_error_line(storykit("pr", plan["id"]), 1)
    assert storykit("plan", "create").exit_code == 2  # --goal is required


# -- policies ------------------------------------------------------------------------
def test_policy_show_set_and_check(tmp_path: Path) -> None:
    shown = ok_json("policy", "show")
    assert shown["policies"] == {"deny-word": {"word": "FORBIDDEN"}}
    assert "deny-word:" in storykit("policy", "show").stdout

    document = tmp_path / "policies.json"
    document.write_text(json.dumps({"deny-word": {"word": "TODO"}}), encoding="utf-8")
    result = storykit("policy", "set", str(document))
    assert result.exit_code == 0, result.output
    assert "policies updated" in result.stdout and '"word": "TODO"' in result.stdout
    assert ok_json("policy", "show")["policies"] == {"deny-word": {"word": "TODO"}}

    allowed = storykit("policy", "check", "-", input=diff_text())
    assert allowed.exit_code == 0 and allowed.stdout.startswith("allow")
    denied = storykit("policy", "check", "-", input=diff_text(added="a = 1  # TODO"))
    assert denied.exit_code == 1 and denied.stdout.startswith("deny")
    assert "added line contains 'TODO'" in denied.stdout
    data = json.loads(
        storykit("policy", "check", "-", "--json", input=diff_text(added="TODO")).stdout
    )
    assert data["outcome"] == "deny" and data["findings"][0]["rule"] == "deny-word.found"
    assert ok_json("suggest", "list")["items"] == []  # checking stores nothing


def test_policy_show_json_edited_goes_back_with_set_unless_it_changed_meanwhile(
    tmp_path: Path,
) -> None:
    shown = ok_json("policy", "show")
    shown["policies"]["deny-word"]["word"] = "TODO"
    edited = json.dumps(shown)
    saved = ok_json("policy", "set", "-", input=edited)
    assert saved["policies"] == {"deny-word": {"word": "TODO"}}
    # The same edit again: the document it was made on is gone.
    line = one_error_line(storykit("policy", "set", "-", input=edited), 1)
    assert f"the policy document is at version {saved['version']}" in line
    assert "storykit policy show --json" in line
    assert ok_json("policy", "show") == saved


def test_policy_set_errors_change_nothing(tmp_path: Path) -> None:
    before = ok_json("policy", "show")
    broken = tmp_path / "broken.json"
    broken.write_text('{"deny-word": {"word": }', encoding="utf-8")
    line = one_error_line(storykit("policy", "set", str(broken)), 1)
    assert f"{broken} is not valid JSON" in line and "line 1" in line
    line = one_error_line(storykit("policy", "set", "-", input="[1, 2]"), 1)
    assert "must hold a JSON object" in line
    line = one_error_line(storykit("policy", "set", "-", input='{"nope": {}}'), 1)
    assert "unknown policy 'nope'" in line
    line = one_error_line(storykit("policy", "set", "-", input='{"deny-word": {"word": ""}}'), 1)
    assert "deny-word: word must be a non-empty string" in line
    assert storykit("policy", "set", str(tmp_path / "missing.json")).exit_code == 2
    assert ok_json("policy", "show") == before


def test_policy_check_of_a_bad_diff() -> None:
    assert "diff" in one_error_line(storykit("policy", "check", "-", input="hello\n"), 1)


# -- plugins, events, keys -----------------------------------------------------------
def test_plugins_lists_what_is_loaded() -> None:
    data = ok_json("plugins")
    assert set(data) == {"version", "plugins", "errors", "pr_backend"}
    assert data["pr_backend"] == "fake-pr"
    (plugin,) = data["plugins"]
    assert plugin["name"] == "cli-fakes" and plugin["package"] == "storykit-cli-fakes"
    assert {"kind": "sources", "name": "fake"} in plugin["backends"]
    text = storykit("plugins").stdout
    assert "cli-fakes" in text and "sources:fake" in text and "register_planners" in text
    assert "PR_BACKEND fake-pr\n" in text


def test_plugins_says_when_real_runs_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PR_BACKEND")
    text = storykit("plugins").stdout
    assert "PR_BACKEND dry-run (previews only: `storykit pr --no-dry-run` is refused)" in text


def test_a_plugin_name_nothing_installed_has_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORYKIT_LOAD_PLUGINS", "cli-fakes,no-pint")
    line = one_error_line(storykit("plugins"), 1)
    assert line.startswith("error: STORYKIT_LOAD_PLUGINS: no installed plugin is called 'no-pint'")
    assert "installed: " in line and "cli-fakes" in line
    monkeypatch.setenv("STORYKIT_LOAD_PLUGINS", "-opa")
    names = {p["name"] for p in ok_json("plugins")["plugins"]}
    assert "cli-fakes" in names and "opa" not in names and "dry-run" in names


def test_events_prints_the_log_and_pages_with_after() -> None:
    suggestion_id = generate()[0]
    ok_json("suggest", "review", suggestion_id, "--approve")
    page = ok_json("events")
    assert set(page) == {"items", "last_id", "head"}
    types = [e["type"] for e in page["items"]]
    assert types == [
        "suggest.progress",
        "suggest.progress",
        "suggest.generated",
        "suggest.reviewed",
    ]
    assert page["last_id"] == page["items"][-1]["id"]
    later = ok_json("events", "--after", "2", "--limit", "1")
    assert [e["id"] for e in later["items"]] == [3]
    assert later["head"] == 4
    text = storykit("events").stdout.splitlines()
    assert len(text) == 4 and "suggest.reviewed" in text[-1] and f"id={suggestion_id}" in text[-1]


def test_events_follow_sees_what_another_process_writes(
    local_env: Path, repo: Path, plugin_path: list[str]
) -> None:
    env = subprocess_env({"STORYKIT_DATA_DIR": str(local_env), "REPO_PATH": str(repo)}, plugin_path)
    command = [sys.executable, "-m", "storykit_cli", "events", "--follow", "--json", "--after", "0"]
    follower = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        lines = LineReader(follower.stdout)  # type: ignore[arg-type]
        ok_json("policy", "set", "-", input='{"deny-word": {"word": "X"}}')  # this process
        event = json.loads(lines.next())
        assert event["id"] == 1 and event["type"] == "policy.updated"
        ok_json("suggest", "submit", "-", "-t", "t", input=diff_text())
        assert json.loads(lines.next())["type"] == "suggest.submitted"
    finally:
        follower.terminate()
        follower.wait(timeout=DEADLINE)
        follower.stdout.close()  # type: ignore[union-attr]
    lines.join()


def test_events_follow_from_past_the_end_says_so_and_follows_from_the_newest(
    local_env: Path, repo: Path, plugin_path: list[str]
) -> None:
    ok_json("policy", "set", "-", input='{"deny-word": {"word": "X"}}')  # event 1
    env = subprocess_env({"STORYKIT_DATA_DIR": str(local_env), "REPO_PATH": str(repo)}, plugin_path)
    command = [sys.executable, "-m", "storykit_cli", "events", "-f", "--json", "--after", "999"]
    follower = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        lines = LineReader(follower.stdout)  # type: ignore[arg-type]
        notices = LineReader(follower.stderr)  # type: ignore[arg-type]
        notice = notices.next()  # said once subscribed: what is written now will show
        assert "event 999 is not in the event log (its newest is 1" in notice
        ok_json("policy", "set", "-", input='{"deny-word": {"word": "Y"}}')
        event = json.loads(lines.next())
        assert (event["id"], event["type"]) == (2, "policy.updated")
    finally:
        follower.terminate()
        follower.wait(timeout=DEADLINE)
        follower.stdout.close()  # type: ignore[union-attr]
        follower.stderr.close()  # type: ignore[union-attr]
    lines.join()
    notices.join()


def test_keys_new_prints_a_key_and_the_api_tokens_entry() -> None:
    result = storykit("keys", "new", "--name", "ci-bot")
    assert result.exit_code == 0, result.output
    assert "ci-bot:agent=sk_" in result.stdout
    data = ok_json("keys", "new", "-n", "alice", "--role", "reviewer")
    assert data["api_tokens_entry"] == f"alice:reviewer={data['key']}"
    (key,) = parse_api_tokens(data["api_tokens_entry"])
    assert key.name == "alice" and key.role == "reviewer"
    assert ok_json("keys", "new")["name"] == local_user()
    assert "cannot be used in API_TOKENS" in one_error_line(storykit("keys", "new", "-n", "a,b"), 1)


def test_outside_a_repository_the_cli_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    data = tmp_path / "nowhere"
    monkeypatch.setenv("REPO_PATH", str(plain))
    monkeypatch.setenv("STORYKIT_DATA_DIR", str(data))
    line = one_error_line(storykit("suggest", "list"), 1)
    assert "not in a git repository" in line and str(plain) in line
    assert "set REPO_PATH" in line and "--url" in line
    assert not data.exists()


def test_from_a_subfolder_the_cli_works_on_the_repository_it_is_in(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storykit.paths import default_data_dir
    from storykit.settings import Settings

    sub = repo / "pkg"
    sub.mkdir()
    monkeypatch.delenv("REPO_PATH")
    monkeypatch.chdir(sub)
    assert Settings.from_env(os.environ).repo_path == repo.resolve()
    assert default_data_dir(environ=os.environ) == default_data_dir(repo, os.environ)


def test_events_summarise_a_pr_dry_run_and_json_keeps_everything() -> None:
    approve_all()
    plan = ok_json("plan", "create", "--goal", "Review everything")
    assert storykit("pr", plan["id"], "--variant", "all").exit_code == 0
    lines = storykit("events").stdout.splitlines()
    dry = [line for line in lines if "pr.dry_run" in line]
    assert len(dry) == 1
    assert len(dry[0]) < 400, dry[0]
    assert "diff=<" in dry[0]  # the diff is summarised, not printed
    full = [e for e in ok_json("events", "--limit", "1000")["items"] if e["type"] == "pr.dry_run"]
    assert "+# reviewed" in full[0]["data"]["diff"]


def test_trace_hooks_prints_each_hook_call_with_plugin_hook_and_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import re

    monkeypatch.setenv("STORYKIT_TRACE_HOOKS", "true")
    result = storykit("suggest", "generate")
    assert result.exit_code == 0, result.output
    traced = [line for line in result.stderr.splitlines() if "hook call" in line]
    assert traced, result.stderr
    assert all(
        re.fullmatch(r"storykit: hook call \S+ \S+\.\S+ \d+\.\d ms", line) for line in traced
    ), traced
