"""Following a pull request after it opened: how a forge's news changes what storykit holds.

Pure functions, no I/O: the use cases (:mod:`storykit._tracking`) read the plan, call
:func:`apply_update` and write the plan back with a ``pr.updated`` event when
:func:`changed` says something a person would notice changed.

Forges deliver webhooks at least once and in no promised order, so an update is merged,
never just copied:

- a merged pull request stays merged (GitHub and GitLab cannot reopen one);
- a state or head older than the one held (by the forge's own ``updated_at``) is ignored;
- checks belong to one commit: a new head starts with no checks, and checks reported
  for another commit than the head are ignored;
- the checks' overall state is the worst of them (:func:`overall`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from storykit.backends import PRUpdate
from storykit.models import Checks, PRState, PullRequest

__all__ = ["apply_update", "changed", "overall", "summary"]


def overall(runs: Mapping[str, Checks]) -> Checks:
    """``failing`` if any check fails, else ``pending`` if any is unfinished, else
    ``passing``; ``none`` without checks."""
    values = set(runs.values())
    if not values:
        return Checks.NONE
    for worst in (Checks.FAILING, Checks.PENDING):
        if worst in values:
            return worst
    return Checks.PASSING


def apply_update(pr: PullRequest, update: PRUpdate) -> PullRequest:
    """``pr`` with what ``update`` says merged in (see the module docstring)."""
    fresh = not (
        update.at is not None
        and pr.forge_updated_at is not None
        and update.at < pr.forge_updated_at
    )
    state, head, runs = pr.state, pr.head, dict(pr.check_runs)
    forge_at, merged_at, url = pr.forge_updated_at, pr.merged_at, pr.url
    if fresh:
        if update.state is not None and state is not PRState.MERGED:
            state = update.state
        if update.state is PRState.MERGED and update.merged_at is not None:
            merged_at = merged_at or update.merged_at
        if update.head and update.head != head:
            head, runs = update.head, {}
        if update.at is not None:
            forge_at = update.at
        if update.url:
            url = update.url
    if update.checks or update.all_checks:
        target = update.checks_head or head
        if not head:
            head = target or ""
        if target == head:
            runs = dict(update.checks) if update.all_checks else {**runs, **update.checks}
    return dataclasses.replace(
        pr,
        state=state,
        head=head,
        check_runs=runs,
        checks=overall(runs),
        forge_updated_at=forge_at,
        merged_at=merged_at,
        url=url,
    )


def changed(before: PullRequest, after: PullRequest) -> bool:
    """Whether ``after`` differs from ``before`` in anything but the forge's clock."""
    fields = ("state", "head", "checks", "check_runs", "merged_at", "url")
    return any(getattr(before, f) != getattr(after, f) for f in fields)


def summary(pr: PullRequest) -> dict[str, Any]:
    """The fields of ``pr`` an event carries."""
    return {
        "backend": pr.backend,
        "repository": pr.repository,
        "number": pr.number,
        "url": pr.url,
        "branch": pr.branch,
        "variant": pr.variant,
        "state": pr.state.value,
        "checks": pr.checks.value,
        "head": pr.head,
    }
