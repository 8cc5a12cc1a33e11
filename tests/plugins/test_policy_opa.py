"""The ``opa`` policy: real Rego in process (regorus), and OPA's Data API over HTTP."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from storykit.backends import Policy, PolicySubject
from storykit.errors import BackendError, Invalid, NotConfigured
from storykit.models import Finding, Outcome, Status
from storykit.plugins import Registry
from storykit.settings import Settings, SettingsError
from storykit.testing import ADMIN, AGENT, make_diff, open_core
from storykit_plugins.policies import opa

pytestmark = pytest.mark.anyio

PROTECTED = """\
package storykit

import rego.v1

protected := ["secrets/", ".github/workflows/"]

deny contains concat("", [f, " is protected"]) if {
\tsome f in input.files
\tsome prefix in protected
\tstartswith(f, prefix)
}

warn contains {"msg": "adds a TODO", "file": line.file, "line": line.line, "rule": "todo"} if {
\tsome line in input.added_lines
\tcontains(line.text, "TODO")
}

warn contains "the title is too short" if count(input.title) < 5
"""

DIFF = make_diff("secrets/token.txt", "a\n", "a\nb\n") + make_diff(
    "app.py", "x\n", "x\n# TODO: y\n"
)
SUBJECT = PolicySubject(
    diff=DIFF, title="Fix", files=("secrets/token.txt", "app.py"), source="api", agent="bot"
)


#: What the operator allows the policy document to name in these tests.
OPA_ENV = {
    "STORYKIT_POLICY_URLS": "http://opa.test:8181",
    "STORYKIT_POLICY_SECRETS": "STORYKIT_TEST_OPA_TOKEN",
}


@pytest.fixture
def policy(policy_registry: Callable[..., Registry]) -> opa.OpaPolicy:
    backend = policy_registry(opa, env=OPA_ENV).policies["opa"].backend
    assert isinstance(backend, opa.OpaPolicy)
    return backend


def _inprocess(rego: str, package: str = "storykit") -> dict[str, Any]:
    return {"mode": "inprocess", "rego": rego, "package": package}


def _brief(findings: list[Finding]) -> list[tuple[str, Outcome, str, str | None, int | None]]:
    return [(f.rule, f.severity, f.message, f.file, f.line) for f in findings]


def test_it_registers_and_is_off_by_default(policy: Policy) -> None:
    assert policy.default_config() == {"mode": "off"}
    policy.validate_config({"mode": "off"})


async def test_off_finds_nothing(policy: Policy) -> None:
    assert list(await policy.check(SUBJECT, {"mode": "off"})) == []


# -- in process -------------------------------------------------------------------------
async def test_inprocess_denies_a_path_and_warns_on_a_word(policy: Policy) -> None:
    config = _inprocess(PROTECTED)
    policy.validate_config(config)
    findings = list(await policy.check(SUBJECT, config))
    assert _brief(findings) == [
        ("deny", Outcome.DENY, "secrets/token.txt is protected", None, None),
        # Rego orders a set's strings before its objects
        ("warn", Outcome.WARN, "the title is too short", None, None),
        ("todo", Outcome.WARN, "adds a TODO", "app.py", 2),
    ]
    assert all(f.policy == "opa" for f in findings)


async def test_inprocess_sees_the_whole_input_document(policy: Policy) -> None:
    echo = (
        "package storykit\nimport rego.v1\n"
        'warn contains json.marshal(object.remove(input, ["diff"])) if true\n'
    )
    (finding,) = await policy.check(SUBJECT, _inprocess(echo))
    assert json.loads(finding.message) == {
        "title": "Fix",
        "rationale": "",
        "files": ["secrets/token.txt", "app.py"],
        "source": "api",
        "agent": "bot",
        "added_lines": [
            {"file": "secrets/token.txt", "line": 2, "text": "b"},
            {"file": "app.py", "line": 2, "text": "# TODO: y"},
        ],
    }


async def test_a_package_path_and_a_boolean_deny(policy: Policy) -> None:
    rego = 'package storykit.review\nimport rego.v1\ndeny if input.agent == "bot"\n'
    config = _inprocess(rego, "storykit.review")
    policy.validate_config(config)
    assert _brief(list(await policy.check(SUBJECT, config))) == [
        ("deny", Outcome.DENY, "data.storykit.review.deny is true", None, None)
    ]


def test_why_rego_v1_is_required() -> None:
    # regorus 0.2.5 reads this module (no `import rego.v1`) with the old grammar: `if` is
    # a name and `deny` comes out true although no file starts with "public/". If this
    # ever fails, regorus changed how it reads modules; revisit _regorus.py.
    import hobofan_regorus  # type: ignore[import-untyped]

    engine = hobofan_regorus.Engine()
    engine.add_policy(
        "p.rego", 'package storykit\ndeny if { startswith(input.files[_], "public/") }\n'
    )
    engine.set_input({"files": ["src/a.py"]})
    assert json.loads(engine.eval_rule_as_json("data.storykit.deny")) is True


@pytest.mark.parametrize(
    ("rego", "message"),
    [
        (
            'package storykit\ndeny if { startswith(input.files[_], "public/") }\n',
            r"must contain the line `import rego.v1`: without it the in-process engine reads"
            r" `if` and `contains` as plain names",
        ),
        (
            # the import line only inside a raw string: the parsed module has no such import
            'package storykit\nx := `\nimport rego.v1\n`\ndeny if { input.title == "" }\n',
            r"must contain the line `import rego.v1`",
        ),
        (
            "package storykit\nimport rego.v1\ndeny contains msg if {\n  msg := \n}\n",
            r"the Rego module does not parse: line \d+, column \d+: ",
        ),
        (
            'package storykit\nimport rego.v1\ndeny[msg] {\n  msg := "x"\n}\n',
            r"does not parse: line 3, column \d+: `if` keyword is required before rule body",
        ),
        (
            'package other\nimport rego.v1\ndeny contains "x" if true\n',
            r"declares package other, but \"package\" is 'storykit'",
        ),
        (
            "package storykit\nimport rego.v1\ndeny contains msg if { x := 1 }\n",
            r"fails on an empty suggestion: evaluating data.storykit failed: line 3, column \d+: "
            r"var is unsafe",
        ),
    ],
)
def test_bad_rego_is_refused_with_the_reason(policy: Policy, rego: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        policy.validate_config(_inprocess(rego))


async def test_an_error_while_evaluating_is_a_backend_error(policy: Policy) -> None:
    rego = (
        "package storykit\nimport rego.v1\n"
        "deny contains x if {\n some l in input.added_lines\n x := 1 / (l.line - l.line)\n}\n"
    )
    config = _inprocess(rego)
    policy.validate_config(config)  # fine on an empty suggestion
    with pytest.raises(BackendError, match=r"evaluating data.storykit failed: .*divide by zero"):
        await policy.check(SUBJECT, config)


async def test_a_blocked_suggestion_through_the_core(tmp_path: Path) -> None:
    async with open_core(tmp_path, plugins={"opa": opa}) as core:
        with pytest.raises(Invalid, match=r"^opa: .*import rego.v1"):
            await core.set_policies(ADMIN, {"opa": _inprocess("package storykit\ndeny := true\n")})
        await core.set_policies(ADMIN, {"opa": _inprocess(PROTECTED)})
        suggestion = await core.submit(AGENT, title="Add a token", diff=DIFF)
        assert suggestion.status is Status.BLOCKED
        assert ("opa", "deny", "secrets/token.txt is protected") in {
            (f.policy, f.rule, f.message) for f in suggestion.findings
        }


# -- REST -------------------------------------------------------------------------------
REST = {"mode": "rest", "url": "http://opa.test:8181", "path": "storykit", "timeout": 5}
DECISION = {
    "decision_id": "0d2d3b0c-6d7c-4a5d-9c4e-2b0d0f8a7e11",
    "result": {
        "deny": ["secrets/token.txt is protected"],
        "warn": [{"msg": "adds a TODO", "file": "app.py", "line": 2, "rule": "todo"}],
    },
}
EMPTY_PACKAGE: dict[str, Any] = {"result": {"deny": [], "warn": []}}
UNDEFINED: dict[str, Any] = {}
ERRORS = {
    400: {"code": "invalid_parameter", "message": "error(s) occurred while parsing input"},
    404: {"code": "undefined_document", "message": "document missing: data/storykit"},
    500: {
        "code": "internal_error",
        "message": "1 error occurred: policy.rego:5: eval_conflict_error: complete rules must"
        " not produce multiple outputs",
    },
}


def _opa(status: int, body: Any, seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handle)


async def test_rest_posts_the_input_and_reads_deny_warn_and_decision_id(
    policy: opa.OpaPolicy,
) -> None:
    seen: list[httpx.Request] = []
    policy.transport = _opa(200, DECISION, seen)
    policy.validate_config(REST)
    findings = list(await policy.check(SUBJECT, REST))
    assert _brief(findings) == [
        (
            "deny",
            Outcome.DENY,
            "secrets/token.txt is protected [OPA decision 0d2d3b0c-6d7c-4a5d-9c4e-2b0d0f8a7e11]",
            None,
            None,
        ),
        (
            "todo",
            Outcome.WARN,
            "adds a TODO [OPA decision 0d2d3b0c-6d7c-4a5d-9c4e-2b0d0f8a7e11]",
            "app.py",
            2,
        ),
    ]
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", "http://opa.test:8181/v1/data/storykit")
    sent = json.loads(request.content)
    assert set(sent) == {"input"}
    assert sent["input"]["files"] == ["secrets/token.txt", "app.py"]
    assert sent["input"]["added_lines"][1] == {"file": "app.py", "line": 2, "text": "# TODO: y"}
    assert "authorization" not in request.headers


async def test_rest_without_decision_logging_has_no_decision_id(policy: opa.OpaPolicy) -> None:
    policy.transport = _opa(200, {"result": DECISION["result"]})
    messages = [f.message for f in await policy.check(SUBJECT, REST)]
    assert messages == ["secrets/token.txt is protected", "adds a TODO"]


async def test_rest_an_empty_package_is_no_findings(policy: opa.OpaPolicy) -> None:
    policy.transport = _opa(200, EMPTY_PACKAGE)
    assert list(await policy.check(SUBJECT, REST)) == []


async def test_rest_an_undefined_document_is_an_error_not_a_pass(policy: opa.OpaPolicy) -> None:
    policy.transport = _opa(200, UNDEFINED)
    with pytest.raises(BackendError, match=r"OPA has no document at data/storykit .*undefined"):
        await policy.check(SUBJECT, REST)


@pytest.mark.parametrize("status", sorted(ERRORS))
async def test_rest_error_statuses_carry_opas_code_and_message(
    policy: opa.OpaPolicy, status: int
) -> None:
    policy.transport = _opa(status, ERRORS[status])
    body = ERRORS[status]
    expected = f"OPA at http://opa.test:8181/v1/data/storykit answered {status}: {body['code']}"
    with pytest.raises(BackendError) as caught:
        await policy.check(SUBJECT, REST)
    assert caught.value.detail == f"{expected}: {body['message']}"


async def test_rest_a_timeout(policy: opa.OpaPolicy) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    policy.transport = httpx.MockTransport(slow)
    with pytest.raises(BackendError, match=r"did not answer within 5s"):
        await policy.check(SUBJECT, REST)


async def test_rest_an_unreachable_server(policy: opa.OpaPolicy) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    policy.transport = httpx.MockTransport(refuse)
    with pytest.raises(
        BackendError, match=r"cannot reach OPA at .*ConnectError: connection refused"
    ):
        await policy.check(SUBJECT, REST)


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(200, text="<html>proxy</html>"),
            r"answered 200 with a body that is not JSON",
        ),
        (httpx.Response(502, text="Bad Gateway"), r"answered 502: Bad Gateway"),
        (httpx.Response(200, json={"result": ["x"]}), r"data/storykit on OPA is a list"),
    ],
)
async def test_rest_odd_answers(
    policy: opa.OpaPolicy, response: httpx.Response, message: str
) -> None:
    policy.transport = httpx.MockTransport(lambda request: response)
    with pytest.raises(BackendError, match=message):
        await policy.check(SUBJECT, REST)


async def test_rest_sends_a_bearer_token_from_the_environment(
    policy_registry: Callable[..., Registry],
) -> None:
    seen: list[httpx.Request] = []
    config = {**REST, "token_env": "STORYKIT_TEST_OPA_TOKEN"}
    unset = policy_registry(opa, env=OPA_ENV).policies["opa"].backend
    assert isinstance(unset, opa.OpaPolicy)
    unset.transport = _opa(200, EMPTY_PACKAGE, seen)
    with pytest.raises(NotConfigured, match=r"STORYKIT_TEST_OPA_TOKEN .* is not set"):
        await unset.check(SUBJECT, config)
    env = OPA_ENV | {"STORYKIT_TEST_OPA_TOKEN": "s3cret"}
    policy = policy_registry(opa, env=env).policies["opa"].backend
    assert isinstance(policy, opa.OpaPolicy)
    policy.transport = _opa(200, EMPTY_PACKAGE, seen)
    await policy.check(SUBJECT, config)
    assert seen[-1].headers["authorization"] == "Bearer s3cret"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"mode": "remote"}, r'"mode" must be "off", "inprocess" or "rest", not "remote"'),
        ({}, r'"mode" must be'),
        ({"mode": "off", "url": "x"}, r"mode \"off\": unknown key 'url'"),
        ({"mode": "rest", "url": "opa:8181"}, r'"url" must be an http\(s\) URL'),
        ({**REST, "timeout": 0}, r'"timeout" must be a number of seconds above 0'),
        ({**REST, "timeout": "5"}, r'"timeout" must be a number'),
        ({**REST, "path": "/v1/data/x"}, r'"path" must look like "storykit"'),
        ({**REST, "path": "storykit/../../admin"}, r'"path" must look like "storykit"'),
        (
            {**REST, "url": "http://evil.test:8181"},
            r'"url" http://evil.test:8181 is not a server the operator lets a policy call;'
            r" allowed: http://opa.test:8181 \(STORYKIT_POLICY_URLS",
        ),
        (
            {**REST, "token_env": "API_TOKENS"},
            r'"token_env" API_TOKENS is not a variable the operator lets a policy read;'
            r" allowed: STORYKIT_TEST_OPA_TOKEN \(STORYKIT_POLICY_SECRETS",
        ),
        ({**REST, "token_env": "not a name"}, r'"token_env" must be the name'),
        ({**REST, "rego": "x"}, r"mode \"rest\": unknown key 'rego'"),
        ({"mode": "inprocess", "rego": ""}, r'"rego" must hold the text of a Rego module'),
        ({"mode": "inprocess", "rego": "x", "package": "a-b"}, r'"package" must be a Rego package'),
    ],
)
def test_bad_configs_say_what_is_wrong(
    policy: Policy, config: Mapping[str, Any], message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        policy.validate_config(config)


# -- what a policy edit can make storykit send ----------------------------------------
KEYS = "root:admin=sk_root_0123456789abcdef,bot:agent=sk_bot_0123456789abcdef"


@dataclasses.dataclass
class Capture:
    """A real HTTP server on 127.0.0.1 that answers like OPA and keeps what it was sent."""

    url: str
    seen: list[tuple[str, dict[str, str], bytes]]

    def everything(self) -> str:
        return "\n".join(f"{path} {headers} {body!r}" for path, headers, body in self.seen)


@pytest.fixture
def capture() -> Iterator[Capture]:
    seen: list[tuple[str, dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.path, dict(self.headers.items()), body))
            answer = json.dumps(EMPTY_PACKAGE).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Capture(url=f"http://127.0.0.1:{server.server_address[1]}", seen=seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_a_policy_edit_cannot_send_api_tokens_anywhere(
    tmp_path: Path, capture: Capture
) -> None:
    leak = {"mode": "rest", "url": capture.url, "token_env": "API_TOKENS"}
    # Nothing allowed (the default): the server is refused first, naming the setting.
    async with open_core(tmp_path / "a", plugins={"opa": opa}, env={"API_TOKENS": KEYS}) as core:
        with pytest.raises(Invalid, match=r"^opa: \"url\" .* \(STORYKIT_POLICY_URLS"):
            await core.set_policies(ADMIN, {"opa": leak})
    # The server allowed, the variable not: refused, naming the other setting.
    env = {"API_TOKENS": KEYS, "STORYKIT_POLICY_URLS": capture.url}
    async with open_core(tmp_path / "b", plugins={"opa": opa}, env=env) as core:
        with pytest.raises(Invalid, match=r"^opa: \"token_env\" API_TOKENS .*SECRETS"):
            await core.set_policies(ADMIN, {"opa": leak})
        # A document stored without these checks (saved by an older storykit, say) is
        # refused again at every check: a policy-error finding, and nothing is sent.
        await core.store.write("policy.updated", {}, policy_config={"opa": leak})
        suggestion = await core.submit(AGENT, title="Add a line", diff=DIFF)
        [error] = [f for f in suggestion.findings if f.rule == "policy-error"]
        assert "STORYKIT_POLICY_SECRETS" in error.message
        assert suggestion.risk.value == "unknown"
    assert capture.seen == []
    # Allowed server and variable: the check sends that token, and never API_TOKENS.
    env |= {"STORYKIT_POLICY_SECRETS": "OPA_TOKEN", "OPA_TOKEN": "opa-token-value"}
    async with open_core(tmp_path / "c", plugins={"opa": opa}, env=env) as core:
        await core.set_policies(ADMIN, {"opa": {**leak, "token_env": "OPA_TOKEN"}})
        await core.submit(AGENT, title="Add a line", diff=DIFF)
    [(path, headers, _body)] = capture.seen
    assert path == "/v1/data/storykit"
    assert headers["Authorization"] == "Bearer opa-token-value"
    assert "sk_root_" not in capture.everything() and "sk_bot_" not in capture.everything()


def test_the_operator_settings_are_checked_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"STORYKIT_POLICY_SECRETS=.*API_TOKENS holds"):
        Settings.from_env({"STORYKIT_POLICY_SECRETS": "OPA_TOKEN,API_TOKENS"}, data_dir=tmp_path)
    with pytest.raises(SettingsError, match=r"STORYKIT_POLICY_SECRETS=.*'a b' is not the name"):
        Settings.from_env({"STORYKIT_POLICY_SECRETS": "a b"}, data_dir=tmp_path)
    for bad in ("ftp://opa.test", "opa.test:8181", "http://u:p@opa.test", "http://opa.test/?x"):
        with pytest.raises(SettingsError, match=r"STORYKIT_POLICY_URLS=.*is not an http\(s\) URL"):
            Settings.from_env({"STORYKIT_POLICY_URLS": bad}, data_dir=tmp_path)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://opa.test:8181", True),
        ("http://OPA.test:8181/", True),
        ("http://gw.test/opa", True),
        ("http://gw.test:80/opa/v2", True),
        ("https://opa.test:8181", False),
        ("http://opa.test:8182", False),
        ("http://opa.test", False),
        ("http://opa.test:8181@evil.test", False),
        ("http://evil.test/?http://opa.test:8181", False),
        ("http://opa.test.evil.test:8181", False),
        ("http://gw.test/opa-evil", False),
        ("http://gw.test/opa/../admin", False),
        ("http://gw.test/", False),
        ("not a url", False),
    ],
)
def test_which_urls_a_policy_may_name(tmp_path: Path, url: str, allowed: bool) -> None:
    settings = Settings.from_env(
        {"STORYKIT_POLICY_URLS": "http://opa.test:8181, http://gw.test/opa/"}, data_dir=tmp_path
    )
    if allowed:
        settings.check_policy_url(url)
    else:
        with pytest.raises(Invalid, match="STORYKIT_POLICY_URLS"):
            settings.check_policy_url(url)
