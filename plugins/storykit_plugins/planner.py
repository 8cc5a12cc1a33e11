"""Planner ``default``: one branch for everything, one per top-level directory, low-risk only.

Variants (keys):

- ``all``: every suggestion, in the order given.
- ``dir:<name>``: the suggestions whose files all sit under one top-level
  directory (``src/<name>`` counts as ``src/<name>``, so a src layout still splits
  by package); files at the repository root make ``dir:(root)``. A suggestion
  that spans several directories is only in ``all`` (and ``low-risk``).
- ``low-risk``: only suggestions whose risk is ``low``.

A variant that holds exactly the same suggestions as ``all`` is left out, and so
is an empty one. Within each variant, suggestions whose changes collide with an
earlier one are left out of its diff and reported as conflicts (see
:mod:`storykit_plugins._combine`). A variant's risk is the highest of the
suggestions it includes, ``unknown`` ranking above ``medium`` and below ``high``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio.to_thread

from storykit.backends import Planner
from storykit.errors import Invalid
from storykit.hookspecs import hookimpl
from storykit.models import Risk, Suggestion, Variant
from storykit.settings import Settings
from storykit_plugins._combine import FilePatch, combine, file_patches

__all__ = ["DefaultPlanner", "group_of", "storykit_register_planners", "variant_risk"]

ROOT = "(root)"
_RISK_RANK = {Risk.LOW: 0, Risk.MEDIUM: 1, Risk.UNKNOWN: 2, Risk.HIGH: 3}
_NESTED = frozenset({"src", "lib", "packages"})  # layouts whose packages sit one level down


def variant_risk(risks: Sequence[Risk]) -> Risk:
    """The highest risk; with nothing to judge, ``unknown``."""
    return max(risks, key=_RISK_RANK.__getitem__, default=Risk.UNKNOWN)


def group_of(path: str) -> str:
    """The directory variant a file belongs to."""
    parts = path.split("/")
    if len(parts) == 1:
        return ROOT
    if parts[0] in _NESTED and len(parts) > 2:
        return f"{parts[0]}/{parts[1]}"
    return parts[0]


class DefaultPlanner:
    name = "default"

    async def plan(self, goal: str, suggestions: Sequence[Suggestion]) -> list[Variant]:
        # Combining thousands of diffs is CPU work: keep it off the event loop.
        return await anyio.to_thread.run_sync(self._plan, list(suggestions))

    def _plan(self, suggestions: list[Suggestion]) -> list[Variant]:
        if not suggestions:
            return []
        patches: dict[str, list[FilePatch]] = {}
        for s in suggestions:
            try:
                patches[s.id] = file_patches(s.diff)
            except Invalid as exc:
                raise Invalid(f"suggestion {s.id}: {exc.detail}") from None
        title = f"All {len(suggestions)} suggestions in one branch"
        everything = self._variant("all", title, suggestions, patches)
        variants = [everything]
        groups: dict[str, list[Suggestion]] = {}
        for s in suggestions:
            names = {group_of(path) for f in patches[s.id] for path in f.claims}
            if len(names) == 1:
                groups.setdefault(names.pop(), []).append(s)
        for name in sorted(groups):
            members = groups[name]
            if len(members) == len(suggestions):
                continue  # the same as ``all``
            where = "files at the repository root" if name == ROOT else f"{name}/"
            title = f"Only {where} ({len(members)} of {len(suggestions)})"
            variants.append(self._variant(f"dir:{name}", title, members, patches))
        low = [s for s in suggestions if s.risk is Risk.LOW]
        if low and len(low) < len(suggestions):
            title = f"Low-risk only ({len(low)} of {len(suggestions)})"
            variants.append(self._variant("low-risk", title, low, patches))
        return variants

    def _variant(
        self,
        key: str,
        title: str,
        members: Sequence[Suggestion],
        patches: dict[str, list[FilePatch]],
    ) -> Variant:
        combined = combine([(s.id, patches[s.id]) for s in members])
        included = set(combined.included)
        if combined.conflicts:
            title += f", {len(members) - len(included)} left out for conflicts"
        return Variant(
            key=key,
            title=title,
            suggestion_ids=combined.included,
            diff=combined.diff,
            conflicts=combined.conflicts,
            risk=variant_risk([s.risk for s in members if s.id in included]),
            planner=self.name,
        )


@hookimpl
def storykit_register_planners(register: Callable[[Planner], None], settings: Settings) -> None:
    """Register the ``default`` planner."""
    register(DefaultPlanner())
