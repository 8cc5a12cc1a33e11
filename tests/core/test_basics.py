"""Settings, keys, ids, diffs, the rate limiter and the core's import purity."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storykit.auth import KeyRing, Role, parse_api_tokens
from storykit.diffs import diff_hash, parse_diff
from storykit.errors import Invalid, Unauthorized
from storykit.ids import check_id, new_id
from storykit.ratelimit import RateLimiter
from storykit.settings import Settings, SettingsError
from storykit.testing import make_diff


def test_settings_defaults_and_the_data_dir_outside_the_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    s = Settings.from_env({"REPO_PATH": str(repo), "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert s.api_keys == ()
    assert s.sse_queue_max == 1000
    assert s.sse_heartbeat_interval == 15
    assert s.rate_limit_rps == 5
    assert s.pr_backend == "dry-run"
    assert s.cors_origins == ()
    assert s.test_mode is False
    assert s.data_dir.is_relative_to(tmp_path / "xdg")
    assert s.db_path == s.data_dir / "storykit.db"
    assert not s.data_dir.is_relative_to(s.repo_path)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SSE_QUEUE_MAX": "lots"}, "SSE_QUEUE_MAX='lots': expected a whole number"),
        ({"SSE_QUEUE_MAX": "0"}, "greater than 0"),
        ({"RATE_LIMIT_RPS": "nan"}, "RATE_LIMIT_RPS"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD'"),
        ({"STORYKIT_TEST_MODE": "maybe"}, "true or false"),
        ({"API_TOKENS": "a:root=abcdefghij"}, "role 'root'"),
        ({"API_TOKENS": "short"}, "at least 8"),
        ({"API_TOKENS": "a:agent=abcdefghij,a:admin=klmnopqrst"}, "used twice"),
    ],
)
def test_bad_settings_say_what_to_fix(env: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env, data_dir=tmp_path)


SECRET = "sk_Zq8Xw3Vv5Tt7Rr9Pp1Nn"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # Separators swapped: today the whole string would become an admin key.
        (f"alice=reviewer:{SECRET}", "entry 1 is not name:role=key"),
        (f"ci:agent={SECRET},alice=reviewer:{SECRET}x", "entry 2 is not name:role=key"),
        (f"alice:{SECRET}", "entry 1 is not name:role=key"),
        (f"alice={SECRET}", "entry 1 is not name:role=key"),
        (f"{SECRET}=", "entry 1 is not name:role=key"),
        (f"alice:reviewer:{SECRET}", "entry 1 is not name:role=key"),
        (f":reviewer={SECRET}", "entry 1 has an empty name"),
        (f"al ice:reviewer={SECRET}", "entry 1 has a name storykit cannot use"),
        (f"alice:{SECRET}={SECRET}", "entry 1 has an unknown role"),
        # A forgotten comma: the key would be "…bob:admin=…".
        (f"alice:reviewer={SECRET}bob:admin={SECRET}", r"entry 1 \(.*\): the key holds"),
        (f"alice:reviewer={SECRET} {SECRET}", r"entry 1 \(.*\): the key holds"),
        (f"{SECRET}\x07", r"entry 1 \(.*\): the key holds"),
    ],
)
def test_malformed_api_tokens_are_refused_and_the_key_is_never_shown(
    raw: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_api_tokens(raw)
    assert SECRET[3:] not in str(caught.value)
    with pytest.raises(SettingsError) as wrapped:
        Settings.from_env({"API_TOKENS": raw}, data_dir=tmp_path)
    assert wrapped.value.detail.startswith("API_TOKENS: ")
    assert SECRET[3:] not in wrapped.value.detail


def test_keys_parse_with_names_and_roles_and_never_show_the_key() -> None:
    keys = parse_api_tokens("ci:agent=agent-key-123, alice:reviewer=rev-key-456 ,bare-admin-key")
    assert [(k.name, k.role) for k in keys] == [
        ("ci", Role.AGENT),
        ("alice", Role.REVIEWER),
        (keys[2].name, Role.ADMIN),
    ]
    assert keys[2].name.startswith("key-")
    assert "agent-key-123" not in repr(keys) and "bare-admin-key" not in repr(keys)
    ring = KeyRing(keys)
    assert ring.lookup("rev-key-456").name == "alice"
    for bad in (None, "", "rev-key-45", "test"):
        with pytest.raises(Unauthorized):
            ring.lookup(bad)


def test_test_keys_only_in_explicit_test_mode() -> None:
    with pytest.raises(Unauthorized):
        KeyRing(()).lookup("test-token")
    assert KeyRing((), test_mode=True).lookup("test-token").role is Role.ADMIN


def test_ids_sort_by_time_and_reject_anything_path_like() -> None:
    ids = [new_id("sug") for _ in range(500)]  # many share a millisecond
    assert len(set(ids)) == 500
    assert ids == sorted(ids)  # creation order, also within one millisecond
    assert all(check_id(i, "sug") == i for i in ids)
    for bad in (
        "../sug",
        "sug_" + "A" * 25,
        "sug_" + "U" * 26,
        "plan_" + ids[0][4:],
        "sug_/" + "A" * 25,
    ):
        with pytest.raises(Invalid):
            check_id(bad, "sug")


def test_diffs_parse_with_unicode_binary_and_reject_traversal() -> None:
    diff = make_diff("docs/ünïcode.md", "ä\n", "ö\n")
    parsed = parse_diff(diff)
    assert parsed.files == ("docs/ünïcode.md",)
    assert [(a.file, a.line, a.text) for a in parsed.added_lines()] == [("docs/ünïcode.md", 1, "ö")]
    binary = (
        "diff --git a/img.png b/img.png\nnew file mode 100644\nindex 0000000..1111111\n"
        "Binary files /dev/null and b/img.png differ\n"
    )
    assert parse_diff(binary).binary_files == ("img.png",)
    assert diff_hash(diff) != diff_hash(diff + " ")
    for path in ("/etc/passwd", "../up.py", ".git/config", "a/../../b.py"):
        with pytest.raises(Invalid):
            parse_diff(make_diff(path, "a\n", "b\n"))


def test_rate_limiter_allows_burst_then_the_rate_and_says_when() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=5, burst=10, clock=lambda: now[0])
    first = [limiter.check_now("bot") for _ in range(11)]
    assert [d.allowed for d in first] == [True] * 10 + [False]
    assert [d.remaining for d in first[:10]] == list(range(9, -1, -1))
    assert first[-1].retry_after == pytest.approx(0.2)
    assert limiter.check_now("other").allowed  # per agent
    allowed = 0
    for _ in range(300):  # 3 simulated seconds at 100 tries/s
        now[0] += 0.01
        allowed += limiter.check_now("bot").allowed
    assert abs(allowed - 15) <= 1  # rate x time
    assert limiter.policy == '"default";q=10;w=2'


def test_the_core_imports_no_web_or_cli_framework() -> None:
    code = (
        "import sys, storykit, storykit.services, storykit.testing, storykit.store.sqlite;"
        "web = {'quart', 'hypercorn', 'click', 'typer', 'starlette', 'quart_trio'};"
        "bad = web & set(sys.modules);"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_missing_tool_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from storykit.testing import tool_missing

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        tool_missing("promtool is missing")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="promtool is missing"):
        tool_missing("promtool is missing")
