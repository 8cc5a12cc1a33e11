"""The policy document and how policy verdicts combine.

The document maps each registered policy's name to its configuration section.
Its version is a hash of the effective document (stored sections over defaults),
recorded on every decision so a verdict can always be traced to its rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from storykit._unicode import require_utf8_json
from storykit.backends import PolicySubject
from storykit.errors import Invalid, PluginError, StorykitError
from storykit.ids import new_id
from storykit.models import Finding, Outcome, PolicyDecision, Risk
from storykit.plugins import Registry

__all__ = ["PolicyEngine", "policy_version"]


def policy_version(document: Mapping[str, Any]) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class PolicyEngine:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def effective(self, stored: Mapping[str, Any] | None) -> dict[str, Any]:
        """Every registered policy's section: the stored one, else its default."""
        stored = stored or {}
        return {
            name: dict(stored[name]) if name in stored else dict(reg.backend.default_config())
            for name, reg in sorted(self.registry.policies.items())
        }

    def validate(self, document: object) -> dict[str, Any]:
        """Check a whole document before it is saved; :class:`Invalid` says what is wrong."""
        if not isinstance(document, Mapping):
            raise Invalid("the policy document must be a JSON object of policy name → settings")
        require_utf8_json(document, "policies")  # before any policy reads it
        known = self.registry.policies
        unknown = sorted(set(document) - set(known))
        if unknown:
            noun = "policy" if len(unknown) == 1 else "policies"
            raise Invalid(
                f"unknown {noun} {', '.join(map(repr, unknown))};"
                f" loaded: {', '.join(sorted(known)) or 'none'}"
            )
        clean: dict[str, Any] = {}
        for name, section in document.items():
            if not isinstance(section, Mapping):
                raise Invalid(f"{name}: the settings must be a JSON object")
            reg = known[name]
            try:
                reg.backend.validate_config(section)
            except Invalid as exc:
                raise Invalid(f"{name}: {exc.detail}") from None
            except Exception as exc:
                self.registry.record_failure(reg.plugin, "validate_config", exc)
                raise PluginError(str(exc), plugin=reg.plugin, hook="validate_config") from exc
            clean[name] = dict(section)
        return clean

    async def evaluate(
        self, subject: PolicySubject, document: Mapping[str, Any], *, extra: Sequence[Finding] = ()
    ) -> PolicyDecision:
        """Run every policy concurrently and combine: any deny wins, then any warn."""
        findings: list[Finding] = list(extra)
        failed = False

        async def run(name: str) -> None:
            nonlocal failed
            reg = self.registry.policies[name]
            section = document.get(name) or reg.backend.default_config()
            try:
                found = await self.registry.call(
                    reg.plugin, "Policy.check", lambda: reg.backend.check(subject, section)
                )
            except StorykitError as exc:
                failed = True
                findings.append(
                    Finding(
                        rule="policy-error",
                        message=exc.detail,
                        severity=Outcome.WARN,
                        policy=name,
                    )
                )
                return
            findings.extend(found)

        async with anyio.create_task_group() as tg:
            for name in self.registry.policies:
                tg.start_soon(run, name)
        findings.sort(key=lambda f: (f.policy, f.file or "", f.line or 0, f.rule))
        outcome = max((f.severity for f in findings), key=lambda o: o.rank, default=Outcome.ALLOW)
        if outcome is Outcome.DENY:
            risk = Risk.HIGH
        elif failed:
            risk = Risk.UNKNOWN
        elif outcome is Outcome.WARN:
            risk = Risk.MEDIUM
        else:
            risk = Risk.LOW
        return PolicyDecision(
            id=new_id("dec"),
            outcome=outcome,
            risk=risk,
            findings=tuple(findings),
            policy_version=policy_version(document),
        )
