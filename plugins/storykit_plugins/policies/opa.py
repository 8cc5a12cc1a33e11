"""The ``opa`` policy: a Rego policy, in process or on an Open Policy Agent server.

The policy sees the suggestion as ``input``::

    {"diff": "...", "title": "...", "rationale": "...", "files": ["a.py"],
     "source": "...", "agent": "...",
     "added_lines": [{"file": "a.py", "line": 3, "text": "..."}]}

and is read at ``data.<package>`` (in process) or ``data/<path>`` (REST): an object
whose ``deny`` and ``warn`` rules give the findings. Each may be a set (or array)
of messages, a single message, or ``true``; a message is a string or an object
``{"msg": "...", "file": "...", "line": 3, "rule": "..."}`` (all but ``msg``
optional). A finding's rule is the message's ``rule``, else ``deny`` or ``warn``.

Configuration, one of::

    {"mode": "off"}                                         # the default
    {"mode": "inprocess", "rego": "package storykit\\nimport rego.v1\\n...",
     "package": "storykit"}
    {"mode": "rest", "url": "http://127.0.0.1:8181", "path": "storykit",
     "timeout": 5, "token_env": "OPA_TOKEN"}                # token_env optional

REST mode calls OPA's Data API, ``POST /v1/data/<path>`` with ``{"input": …}``.
When OPA logs decisions it answers with a ``decision_id``; every finding's message
then ends with ``[OPA decision <id>]`` so a reviewer can find it in OPA's log. An
undefined document (no ``result``: the policy is not loaded, or the path is wrong),
an error status, a timeout or an unreachable server raise
:class:`~storykit.errors.BackendError`, which the core records as a warning and an
``unknown`` risk: a missing policy never passes silently as "no findings".
``token_env`` names an environment variable holding a bearer token, so that the
token never sits in the policy document, which agents can read.

The policy document is edited at run time by any admin, so it may only choose among
what the operator allowed at start-up: ``url`` must be under one of
``STORYKIT_POLICY_URLS`` and ``token_env`` one of ``STORYKIT_POLICY_SECRETS``
(:meth:`~storykit.settings.Settings.check_policy_url`,
:meth:`~storykit.settings.Settings.policy_secret`). Both are checked when the
document is saved and again before every call.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from storykit.backends import Policy, PolicySubject
from storykit.errors import BackendError, Invalid
from storykit.hookspecs import hookimpl
from storykit.models import Finding, Outcome
from storykit.settings import Settings
from storykit_plugins._http import map_httpx_errors
from storykit_plugins.policies import _common, _regorus

__all__ = ["NAME", "OpaPolicy", "build_input", "findings_from_result"]

NAME = "opa"
_MODES = {
    "off": ("mode",),
    "inprocess": ("mode", "rego", "package"),
    "rest": ("mode", "url", "path", "timeout", "token_env"),
}
_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_TIMEOUT = 60.0
_EMPTY_INPUT: Mapping[str, Any] = {
    "diff": "",
    "title": "",
    "rationale": "",
    "files": [],
    "source": "",
    "agent": "",
    "added_lines": [],
}


def build_input(subject: PolicySubject) -> dict[str, Any]:
    """The ``input`` document for ``subject``; parses the diff (CPU-bound for big diffs)."""
    added = [
        {"file": line.file, "line": line.line, "text": line.text}
        for line in _common.parsed(subject.diff).added_lines()
    ]
    return {
        "diff": subject.diff,
        "title": subject.title,
        "rationale": subject.rationale,
        "files": list(subject.files),
        "source": subject.source,
        "agent": subject.agent,
        "added_lines": added,
    }


def findings_from_result(
    result: Mapping[str, Any], *, document: str, decision_id: str | None = None
) -> list[Finding]:
    """Findings from the ``deny`` and ``warn`` rules of ``document`` (``data.storykit``)."""
    out: list[Finding] = []
    for kind, severity in (("deny", Outcome.DENY), ("warn", Outcome.WARN)):
        for item in _items(result.get(kind)):
            out.append(_finding(f"{document}.{kind}", kind, severity, item, decision_id))
    return out


def _items(value: Any) -> list[Any]:
    if value is None or value is False:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _finding(
    rule_path: str, kind: str, severity: Outcome, item: Any, decision_id: str | None
) -> Finding:
    file: str | None = None
    line: int | None = None
    rule = kind
    if item is True:
        message = f"{rule_path} is true"
    elif isinstance(item, str):
        message = item
    elif isinstance(item, Mapping):
        text = item.get("msg", item.get("message"))
        message = text if isinstance(text, str) else json.dumps(item, sort_keys=True)
        file = item["file"] if isinstance(item.get("file"), str) else None
        raw_line = item.get("line")
        line = raw_line if isinstance(raw_line, int) and not isinstance(raw_line, bool) else None
        rule = item["rule"] if isinstance(item.get("rule"), str) and item["rule"] else kind
    else:
        message = json.dumps(item, sort_keys=True)
    if decision_id:
        message = f"{message} [OPA decision {decision_id}]"
    return Finding(policy=NAME, rule=rule, severity=severity, message=message, file=file, line=line)


def _validate(config: Mapping[str, Any]) -> str:
    """Check ``config``; return its mode."""
    mode = config.get("mode") if isinstance(config, Mapping) else None
    if mode not in _MODES:
        raise Invalid(f'"mode" must be "off", "inprocess" or "rest", not {json.dumps(mode)}')
    _common.section(config, _MODES[str(mode)], where=f'mode "{mode}"')
    if mode == "inprocess":
        rego, package = config.get("rego"), config.get("package", "storykit")
        if not isinstance(rego, str) or not rego.strip():
            raise Invalid('"rego" must hold the text of a Rego module')
        if not isinstance(package, str) or not _PACKAGE.fullmatch(package):
            raise Invalid(
                f'"package" must be a Rego package name like "storykit", not {json.dumps(package)}'
            )
        _regorus.check_module(rego, package, _EMPTY_INPUT)
    elif mode == "rest":
        url = config.get("url")
        if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s/?#]+(?:/[^\s?#]*)?", url):
            raise Invalid(
                f'"url" must be an http(s) URL like "http://127.0.0.1:8181", not {json.dumps(url)}'
            )
        path = config.get("path", "storykit")
        # No "." or ".." segments: the request must stay under the allowed URL.
        if (
            not isinstance(path, str)
            or not _PATH.fullmatch(path)
            or {".", ".."} & set(path.split("/"))
        ):
            raise Invalid(
                f'"path" must look like "storykit" or "storykit/review", not {json.dumps(path)}'
            )
        timeout = config.get("timeout", 5)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= _MAX_TIMEOUT
        ):
            raise Invalid(
                f'"timeout" must be a number of seconds above 0 and at most {_MAX_TIMEOUT:g}'
            )
        token_env = config.get("token_env")
        if token_env is not None and (
            not isinstance(token_env, str) or not _ENV.fullmatch(token_env)
        ):
            raise Invalid('"token_env" must be the name of an environment variable')
    return str(mode)


class OpaPolicy:
    """Evaluates a Rego policy; see the module documentation for modes and results.

    ``settings`` say which servers and variables a document may name;
    ``transport`` is handed to ``httpx.AsyncClient``; tests set an
    ``httpx.MockTransport`` there to answer for an OPA server.
    """

    name = NAME

    def __init__(
        self, *, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.transport = transport

    def default_config(self) -> dict[str, Any]:
        return {"mode": "off"}

    def validate_config(self, config: Mapping[str, Any]) -> None:
        if _validate(config) == "rest":
            self._allowed(config)

    def _allowed(self, config: Mapping[str, Any]) -> None:
        """Refuse a server or a variable the operator did not allow (:class:`Invalid`)."""
        self.settings.check_policy_url(str(config["url"]))
        token_env = config.get("token_env")
        if token_env:
            self.settings.check_policy_secret(str(token_env))

    async def check(self, subject: PolicySubject, config: Mapping[str, Any]) -> list[Finding]:
        mode = _validate_cached(config)
        if mode == "rest":
            # Again at each call: the document may predate the operator's allowlist.
            self._allowed(config)
        if mode == "off":
            return []
        if mode == "inprocess":
            rego, package = str(config["rego"]), str(config.get("package", "storykit"))

            def run() -> list[Finding]:
                result = _regorus.evaluate(rego, package, build_input(subject))
                return findings_from_result(result, document=f"data.{package}")

            # A regorus engine is bound to the thread that made it; build it, and the
            # input, in the worker thread that evaluates.
            return await _common.in_thread(run)
        input_doc = await _common.offload(len(subject.diff), lambda: build_input(subject))
        result, decision_id = await self._rest(config, input_doc)
        document = "data." + str(config.get("path", "storykit")).replace("/", ".")
        return findings_from_result(result, document=document, decision_id=decision_id)

    async def _rest(
        self, config: Mapping[str, Any], input_doc: Mapping[str, Any]
    ) -> tuple[dict[str, Any], str | None]:
        path = str(config.get("path", "storykit"))
        url = f"{str(config['url']).rstrip('/')}/v1/data/{path}"
        timeout = float(config.get("timeout", 5))
        headers = {}
        token_env = config.get("token_env")
        if token_env:
            headers["Authorization"] = f"Bearer {self.settings.policy_secret(str(token_env))}"
        with map_httpx_errors(
            timeout=f"OPA at {url} did not answer within {timeout:g}s",
            unreachable=lambda error: f"cannot reach OPA at {url}: {error}",
        ):
            async with httpx.AsyncClient(transport=self.transport, timeout=timeout) as client:
                response = await client.post(url, json={"input": input_doc}, headers=headers)
        body = _json(response, url)
        if not response.is_success:
            code = body.get("code", "") if isinstance(body, dict) else ""
            message = body.get("message", "") if isinstance(body, dict) else ""
            detail = ": ".join(str(p) for p in (code, message) if p) or response.reason_phrase
            raise BackendError(f"OPA at {url} answered {response.status_code}: {detail}")
        if not isinstance(body, dict):
            raise BackendError(
                f"OPA at {url} answered with a JSON {type(body).__name__}, not an object"
            )
        decision_id = body.get("decision_id")
        decision_id = decision_id if isinstance(decision_id, str) else None
        if "result" not in body:
            raise BackendError(
                f"OPA has no document at data/{path} (the result is undefined): is the policy"
                ' loaded, and is "path" its package?'
            )
        result = body["result"]
        if not isinstance(result, dict):
            raise BackendError(
                f"data/{path} on OPA is a {type(result).__name__}; expected the package (an object"
                " with deny and warn rules)"
            )
        return result, decision_id


def _json(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        if not response.is_success:
            return {}
        raise BackendError(
            f"OPA at {url} answered {response.status_code} with a body that is not JSON"
        ) from None


def _validate_cached(config: Mapping[str, Any]) -> str:
    return _mode_of(_common.canonical(config))


@functools.lru_cache(maxsize=16)
def _mode_of(key: str) -> str:
    # Validating an in-process policy parses and trial-runs it: once per text is enough.
    return _validate(json.loads(key))


@hookimpl
def storykit_register_policies(register: Callable[[Policy], None], settings: Settings) -> None:
    register(OpaPolicy(settings=settings))
