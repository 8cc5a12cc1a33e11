"""A suggestion's findings as a SARIF 2.1.0 log, for code-scanning uploaders and reviewdog.

Pure: builds a JSON-ready dict and does no I/O. One run whose ``tool.driver`` is storykit
with one rule per distinct ``policy/rule`` among the findings; one result per finding with
its ``ruleId``, ``level`` (deny → error, warn → warning, allow → note), ``message.text`` and a
repository-relative location. There are no ``partialFingerprints``: uploaders compute their
own from the file contents, which storykit does not have.

A finding that names no file (a finding about the title, say) is placed at line 1 of the
suggestion's first changed file, since code-scanning tools refuse results without one; a
finding with a file but no line is placed at line 1 of that file.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import storykit
from storykit.models import Finding, Outcome, Suggestion

__all__ = ["LEVELS", "MEDIA_TYPE", "SARIF_SCHEMA", "SARIF_VERSION", "rule_id", "sarif_log"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
MEDIA_TYPE = "application/sarif+json"
LEVELS = {Outcome.DENY: "error", Outcome.WARN: "warning", Outcome.ALLOW: "note"}


def rule_id(finding: Finding) -> str:
    """``policy/rule``: rule names are only unique within the policy that reports them."""
    return f"{finding.policy}/{finding.rule}" if finding.policy else finding.rule


def _rule(finding: Finding) -> dict[str, Any]:
    by = f" (reported by the {finding.policy} policy)" if finding.policy else ""
    rule: dict[str, Any] = {
        "id": rule_id(finding),
        "shortDescription": {"text": f"{finding.rule}{by}"},
        "defaultConfiguration": {"level": LEVELS[finding.severity]},
    }
    if finding.policy:
        rule["properties"] = {"policy": finding.policy}
    return rule


def _location(path: str, line: int | None) -> dict[str, Any]:
    return {
        "physicalLocation": {
            # A URI reference: a path with a space or a ``%`` in it must be escaped.
            "artifactLocation": {"uri": quote(path, safe="/")},
            "region": {"startLine": line if line is not None and line >= 1 else 1},
        }
    }


def sarif_log(suggestion: Suggestion, *, version: str = storykit.__version__) -> dict[str, Any]:
    """The SARIF 2.1.0 log of ``suggestion``'s findings (``version``: storykit's)."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    fallback = suggestion.files[0] if suggestion.files else None
    for finding in suggestion.findings:
        rid = rule_id(finding)
        if rid not in index:
            index[rid] = len(rules)
            rules.append(_rule(finding))
        result: dict[str, Any] = {
            "ruleId": rid,
            "ruleIndex": index[rid],
            "level": LEVELS[finding.severity],
            "message": {"text": finding.message or finding.rule},
        }
        path = finding.file or fallback
        if path:
            result["locations"] = [_location(path, finding.line if finding.file else None)]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": {"name": "storykit", "version": version, "rules": rules}},
                "results": results,
                "properties": {
                    "suggestion": {
                        "id": suggestion.id,
                        "revision": suggestion.revision,
                        "status": suggestion.status.value,
                        "risk": suggestion.risk.value,
                        "base_ref": suggestion.base_ref,
                        "diff_hash": suggestion.diff_hash,
                    }
                },
            }
        ],
    }
