"""``storykit suggest show --sarif``: the findings as the SARIF log the server serves."""

from __future__ import annotations

import json

import pytest
from cli_helpers import diff_text, ok_json, storykit

from storykit.models import Suggestion
from storykit.sarif import sarif_log

pytestmark = pytest.mark.usefixtures("local_env")


def test_show_sarif_prints_the_findings_as_a_sarif_log() -> None:
    stored = ok_json("suggest", "submit", "-", "-t", "Bad", input=diff_text(added="FORBIDDEN"))
    assert stored["status"] == "blocked"
    result = storykit("suggest", "show", stored["id"], "--sarif")
    assert result.exit_code == 0, result.output
    log = json.loads(result.stdout)
    assert log == sarif_log(Suggestion.from_dict(stored))
    [run] = log["runs"]
    [found] = run["results"]
    assert found["ruleId"] == "deny-word/deny-word.found" and found["level"] == "error"
    assert found["message"]["text"] == "added line contains 'FORBIDDEN'"
    location = found["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "a.py"}, "region": {"startLine": 1}}


def test_sarif_and_json_are_one_or_the_other() -> None:
    stored = ok_json("suggest", "submit", "-", "-t", "Fine", input=diff_text())
    result = storykit("suggest", "show", stored["id"], "--sarif", "--json")
    assert result.exit_code == 2, result.output
    assert "--sarif" in result.stderr and "--json" in result.stderr
