"""The ``risk-regex`` policy: default rules, custom rules, validation, and hostile input."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from storykit.backends import Policy, PolicySubject
from storykit.errors import Invalid
from storykit.models import Finding, Outcome, Status
from storykit.plugins import Registry
from storykit.testing import ADMIN, AGENT, make_diff, open_core
from storykit_plugins.policies import risk_regex
from storykit_plugins.policies.risk_rules import DEFAULT_RULES

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]

# rule id → added lines it must flag
FIRES: dict[str, list[str]] = {
    "private-key": [
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----",
    ],
    "aws-access-key-id": ['aws_key = "AKIAIOSFODNN7EXAMPLE"', "ASIAY34FZKBOKMUTVV7A"],
    "aws-secret-access-key": [
        'AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
        "aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ],
    "github-token": [
        "token = 'ghp_" + "a1B2c3D4e5" * 3 + "abcdef'",
        "GH=github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
    ],
    "slack-token": ["SLACK=xoxb-1234567890-abcdefghij"],
    "secret-assignment": [
        'API_KEY = "sk-live-0123456789abcdef"',
        'password: "correct-horse-battery-staple"',
        "const apiToken = 'abcdef0123456789abcdef';",
    ],
    "rm-rf-root": [
        "rm -rf /",
        "sudo rm -rf --no-preserve-root /",
        "rm -rf ~/",
        'rm -fr "$HOME"',
        "rm -r -f /*",
    ],
    "curl-pipe-shell": [
        "curl -fsSL https://get.example.com | sh",
        "wget -qO- https://x.io/install | sudo bash",
    ],
    "eval-input": ['eval(input("> "))', 'exec(request.form["code"])', "eval(req.query.expr)"],
    "tls-verify-disabled": [
        "requests.get(url, verify=False)",
        "  rejectUnauthorized: false,",
        "InsecureSkipVerify: true,",
        "curl_setopt($ch, CURLOPT_SSL_VERIFYPEER, 0);",
        "ctx = ssl._create_unverified_context()",
    ],
    "chmod-777": ["chmod 777 /srv/app", "chmod -R 0777 uploads", "os.chmod(path, 0o777)"],
    "pickle-loads": ["obj = pickle.loads(blob)", "data = pickle.load(f)"],
    "subprocess-shell": ["subprocess.run(cmd, shell=True)", "    shell=True,"],
    "sql-string-format": [
        'cur.execute(f"SELECT * FROM users WHERE id = {uid}")',
        'cur.execute("SELECT name FROM t WHERE id = %s" % uid)',
        'q = "DELETE FROM t WHERE id = " + uid',
        "q = 'UPDATE users SET name = \"{}\"'.format(n)",
        "db.query(`SELECT * FROM t WHERE id = ${id}`)",
    ],
}
# rule id → added lines it must leave alone (near misses)
QUIET: dict[str, list[str]] = {
    "private-key": ["-----BEGIN PUBLIC KEY-----", "-----BEGIN CERTIFICATE-----"],
    "aws-access-key-id": ["AKIAIOSFODNN7EXAMPL", "xAKIAIOSFODNN7EXAMPLE"],
    "aws-secret-access-key": ['aws_secret_access_key = os.environ["AWS_SECRET_ACCESS_KEY"]'],
    "github-token": ["ghp_short", "see https://github.com/settings/tokens"],
    "slack-token": ["xoxz-1234567890", "xoxb-short"],
    "secret-assignment": [
        'api_key = os.environ["API_KEY"]',
        'token = "short"',
        'secret = "${SECRET_FROM_THE_ENVIRONMENT}"',
        'password = "<your-password-goes-here>"',
    ],
    "rm-rf-root": ["rm -rf /tmp/build", "rm -rf ./dist", "rm -f /etc/motd"],
    "curl-pipe-shell": ["curl -o install.sh https://x.io && less install.sh", "curl api | jq ."],
    "eval-input": ["ast.literal_eval(input())", "eval(compile_safe(expr))"],
    "tls-verify-disabled": ["requests.get(url, verify=True)", "rejectUnauthorized: true"],
    "chmod-777": ["chmod 755 bin/run", "os.chmod(path, 0o755)"],
    "pickle-loads": ["blob = pickle.dumps(obj)", "json.loads(s)"],
    "subprocess-shell": ['subprocess.run(["ls"], shell=False)'],
    "sql-string-format": [
        'cur.execute("SELECT * FROM users WHERE id = %s", (uid,))',
        'msg = "select a file from the list"',
        'print(f"selected {n} rows")',
    ],
}
# path rules: rule id → (paths a diff adds that it flags, paths it leaves alone)
PATHS: dict[str, tuple[list[str], list[str]]] = {
    "dotenv-file": (
        [".env", "config/.env.local", "deploy/.env.production"],
        [".env.example", "env.py", "docs/dotenv.md"],
    ),
}


@pytest.fixture
def policy(policy_registry: Callable[..., Registry]) -> Policy:
    registry = policy_registry(risk_regex)
    return registry.policies["risk-regex"].backend


def _added(path: str, *lines: str) -> str:
    return make_diff(path, "", "".join(line + "\n" for line in lines))


async def _check(
    policy: Policy, diff: str, config: Mapping[str, Any] | None = None
) -> list[Finding]:
    config = policy.default_config() if config is None else config
    return list(await policy.check(PolicySubject(diff=diff), config))


def test_every_default_rule_has_cases_that_fire_and_cases_that_do_not() -> None:
    ids = {rule["id"] for rule in DEFAULT_RULES}
    assert ids == set(FIRES) | set(PATHS) == set(QUIET) | set(PATHS)


def test_the_docs_list_every_default_rule_as_the_code_defines_it() -> None:
    docs = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    for rule in DEFAULT_RULES:
        scope = rule.get("scope", "line")
        row = f"| `{rule['id']}` | {rule['severity']} | {scope} | {rule['message']} |"
        assert row in docs, f"docs/policies.md lacks the table row {row!r}"
        line = f"{rule['id']}: {rule['pattern']}\n"
        assert line in docs, f"docs/policies.md lacks the pattern line {line!r}"


def test_it_registers_through_its_hook(policy: Policy) -> None:
    assert policy.name == "risk-regex"
    assert isinstance(policy, risk_regex.RiskRegexPolicy)


def test_the_default_config_is_plain_json_and_the_same_every_time(policy: Policy) -> None:
    first = policy.default_config()
    assert json.loads(json.dumps(first)) == first
    first["rules"].clear()  # a caller changing its copy changes nothing else
    assert policy.default_config() == {"rules": [dict(r) for r in DEFAULT_RULES]}
    policy.validate_config(policy.default_config())


@pytest.mark.parametrize(
    ("rule_id", "line"), [(r, line) for r, lines in FIRES.items() for line in lines]
)
async def test_default_rule_fires(policy: Policy, rule_id: str, line: str) -> None:
    findings = await _check(policy, _added("src/app.py", "x = 1", line))
    hits = [f for f in findings if f.rule == rule_id]
    severity = next(Outcome(r["severity"]) for r in DEFAULT_RULES if r["id"] == rule_id)
    assert [(f.policy, f.file, f.line, f.severity) for f in hits] == [
        ("risk-regex", "src/app.py", 2, severity)
    ]


@pytest.mark.parametrize(
    ("rule_id", "line"), [(r, line) for r, lines in QUIET.items() for line in lines]
)
async def test_default_rule_stays_quiet(policy: Policy, rule_id: str, line: str) -> None:
    findings = await _check(policy, _added("src/app.py", line))
    assert rule_id not in {f.rule for f in findings}


@pytest.mark.parametrize(
    ("rule_id", "path", "fires"),
    [
        (rule_id, path, fires)
        for rule_id, (flagged, quiet) in PATHS.items()
        for paths, fires in ((flagged, True), (quiet, False))
        for path in paths
    ],
)
async def test_default_path_rule(policy: Policy, rule_id: str, path: str, fires: bool) -> None:
    findings = await _check(policy, _added(path, "A=1"))
    hits = [(f.file, f.line, f.severity) for f in findings if f.rule == rule_id]
    assert hits == ([(path, None, Outcome.DENY)] if fires else [])


async def test_a_deleted_env_file_is_not_a_committed_one(policy: Policy) -> None:
    diff = (
        "diff --git a/.env b/.env\ndeleted file mode 100644\n"
        "--- a/.env\n+++ /dev/null\n@@ -1 +0,0 @@\n-A=1\n"
    )
    assert await _check(policy, diff) == []


async def test_removed_and_context_lines_never_fire(policy: Policy) -> None:
    diff = make_diff(
        "deploy.sh",
        "rm -rf /\nkey = 'AKIAIOSFODNN7EXAMPLE'\nok\n",
        "rm -rf /\nok\nfine\n",
    )
    assert await _check(policy, diff) == []


async def test_findings_never_quote_the_secret(policy: Policy) -> None:
    findings = await _check(policy, _added("a.py", 'k = "AKIAIOSFODNN7EXAMPLE"'))
    assert findings and all("AKIAIOSFODNN7EXAMPLE" not in f.message for f in findings)


async def test_a_flood_of_matches_is_capped_per_rule(policy: Policy) -> None:
    lines = [f'k{i} = "AKIA{i:016d}"' for i in range(150)]
    findings = await _check(policy, _added("keys.py", *lines))
    keys = [f for f in findings if f.rule == "aws-access-key-id"]
    assert len(keys) == 101
    assert [f.line for f in keys[:100]] == list(range(1, 101))
    assert keys[100].line is None and "50 more places" in keys[100].message


def _rules(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"rules": list(rules)}


async def test_a_custom_rule_limited_to_some_files(policy: Policy) -> None:
    config = _rules(
        {
            "id": "no-print",
            "pattern": r"\bprint\(",
            "severity": "warn",
            "message": "use logging",
            "files": ["src/**/*.py"],
        }
    )
    policy.validate_config(config)
    diff = _added("src/pkg/a.py", "print(1)") + _added("scripts/b.py", "print(2)")
    findings = await _check(policy, diff, config)
    assert [(f.rule, f.file, f.line, f.message) for f in findings] == [
        ("no-print", "src/pkg/a.py", 1, "use logging")
    ]


async def test_anchored_patterns_see_the_line_without_its_plus(policy: Policy) -> None:
    config = _rules({"id": "import-pickle", "pattern": r"^\s*import pickle$", "severity": "deny"})
    diff = _added(
        "a.py", "import pickle", "x = 1  # import pickle", "    import pickle", "import pickles"
    )
    findings = await _check(policy, diff, config)
    assert [(f.line, f.severity, f.message) for f in findings] == [
        (1, Outcome.DENY, "matches the risk rule import-pickle"),
        (3, Outcome.DENY, "matches the risk rule import-pickle"),
    ]


async def test_several_rules_on_one_line_each_give_a_finding(policy: Policy) -> None:
    line = 'subprocess.run(f"curl {u} | sh", shell=True); requests.get(u, verify=False)'
    findings = await _check(policy, _added("a.py", line))
    assert sorted(f.rule for f in findings) == [
        "curl-pipe-shell",
        "subprocess-shell",
        "tls-verify-disabled",
    ]


def test_a_config_is_compiled_once() -> None:
    config = {"rules": [dict(r) for r in DEFAULT_RULES]}
    assert risk_regex.compile_rules(config) is risk_regex.compile_rules(copy.deepcopy(config))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rules": "x"}, r'"rules" must be a list'),
        ({"rules": [], "extra": 1}, r"unknown key 'extra'"),
        (
            _rules({"id": "a", "pattern": r"foo(?=bar)", "severity": "deny"}),
            r"rule 'a': pattern 'foo\(\?=bar\)' is not valid RE2: invalid perl operator: \(\?= "
            r"\(RE2 has no lookahead, lookbehind or backreferences",
        ),
        (
            _rules({"id": "b", "pattern": r"(a)\1", "severity": "deny"}),
            r"rule 'b': .*invalid escape sequence: \\1 \(RE2 has no lookahead",
        ),
        (
            _rules({"id": "c", "pattern": "(unclosed", "severity": "warn"}),
            r"rule 'c': .*not valid RE2: missing \): \(unclosed$",
        ),
        (
            _rules({"id": "d", "pattern": "x*", "severity": "warn"}),
            r"rule 'd': pattern 'x\*' can match an empty string",
        ),
        (_rules({"id": "e", "pattern": r"^", "severity": "warn"}), r"rule 'e': .*empty string"),
        (
            _rules({"id": "f", "pattern": "x", "severity": "block"}),
            r'rule \'f\': "severity" must be "warn" or "deny", not "block"',
        ),
        (_rules({"id": "g", "pattern": "x"}), r'rule \'g\': "severity" is missing'),
        (_rules({"id": "h", "severity": "warn"}), r'rule \'h\': "pattern" must be a non-empty'),
        (
            _rules({"id": "i", "pattern": "x", "severity": "warn", "sevrity": "deny"}),
            r"rules\[0\]: unknown key 'sevrity'",
        ),
        (
            _rules({"id": "j", "pattern": "x", "severity": "warn", "files": ["[z-a]"]}),
            r'rule \'j\': "files"\[0\]: glob .*not valid',
        ),
        (
            _rules({"id": "k", "pattern": "x", "severity": "warn", "scope": "file"}),
            r'rule \'k\': "scope" must be "line" or "path"',
        ),
        (
            _rules({"id": "bad id!", "pattern": "x", "severity": "warn"}),
            r'rules\[0\]: "id" must be',
        ),
        (
            _rules(
                {"id": "l", "pattern": "x", "severity": "warn"},
                {"id": "l", "pattern": "y", "severity": "warn"},
            ),
            r"rules\[1\]: the id 'l' is used twice",
        ),
        ({"rules": ["x"]}, r"rules\[0\] must be a JSON object, not a string"),
    ],
)
def test_bad_configs_say_which_rule_and_what_is_wrong(
    policy: Policy, config: dict[str, Any], message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        policy.validate_config(config)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [(r"(a+)+$", "a" * 200_000 + "!"), (r"(x+x+)+y", "x" * 200_000), (r"(.*a){20}", "a" * 50_000)],
)
async def test_hostile_patterns_on_hostile_lines_finish_quickly(
    policy: Policy, pattern: str, text: str
) -> None:
    # Python's re needs exponential time for these (see bench/bench_policy.py); RE2 is linear.
    config = _rules({"id": "evil", "pattern": pattern, "severity": "warn"})
    policy.validate_config(config)
    started = time.perf_counter()
    await _check(policy, _added("a.txt", text, "aaaa"), config)
    assert time.perf_counter() - started < 5


async def test_big_diffs_are_checked_in_a_worker_thread(
    policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[bool] = []
    original = risk_regex.RuleSet.findings

    def spy(self: risk_regex.RuleSet, diff: bytes) -> list[Finding]:
        threads.append(threading.current_thread() is threading.main_thread())
        return original(self, diff)

    monkeypatch.setattr(risk_regex.RuleSet, "findings", spy)
    await _check(policy, _added("small.py", "x = 1"))
    await _check(policy, _added("big.py", *["x = 1"] * 20_000))
    assert threads == [True, False]


async def test_a_suggestion_with_a_private_key_is_blocked_by_the_core(tmp_path: Path) -> None:
    async with open_core(tmp_path, plugins={"risk_regex": risk_regex}) as core:
        suggestion = await core.submit(
            AGENT, title="add key", diff=_added("id_rsa", "-----BEGIN RSA PRIVATE KEY-----")
        )
        assert suggestion.status is Status.BLOCKED
        assert [(f.policy, f.rule, f.file) for f in suggestion.findings] == [
            ("risk-regex", "private-key", "id_rsa")
        ]
        with pytest.raises(Invalid, match=r"risk-regex: rule 'x': .*lookahead"):
            await core.set_policies(
                ADMIN, {"risk-regex": _rules({"id": "x", "pattern": "a(?!b)", "severity": "warn"})}
            )
