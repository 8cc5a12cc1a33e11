"""Planner ``default``: one branch for everything, one per top-level directory, low-risk only.

Variants (keys):

- ``all``: every suggestion, in the order given.
- ``dir:<name>``: the suggestions whose files all sit under one top-level
  directory (``src/<name>`` counts as ``src/<name>``, so a src layout still splits
  by package); files at the repository root make ``dir:(root)``. A suggestion
  that spans several directories is only in ``all`` (and ``low-risk``).
- ``low-risk``: only suggestions whose risk is ``low``.

A variant that holds exactly the same suggestions as ``all`` is left out, and so
is an empty one. Like every planner it only groups and orders: the core derives
each variant's diff, conflicts and risk from the approved diffs it names (see
:mod:`storykit.combine`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio.to_thread

from storykit.backends import Planner
from storykit.combine import file_patches
from storykit.errors import Invalid
from storykit.hookspecs import hookimpl
from storykit.models import Risk, Suggestion, Variant
from storykit.settings import Settings

__all__ = ["DefaultPlanner", "group_of", "storykit_register_planners"]

ROOT = "(root)"
_NESTED = frozenset({"src", "lib", "packages"})  # layouts whose packages sit one level down


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
        # Reading thousands of diffs is CPU work: keep it off the event loop.
        return await anyio.to_thread.run_sync(self._plan, list(suggestions))

    def _plan(self, suggestions: list[Suggestion]) -> list[Variant]:
        if not suggestions:
            return []
        n = len(suggestions)
        everything = f"All {n} suggestions" if n > 1 else "1 suggestion"
        variants = [self._variant("all", f"{everything} in one branch", suggestions)]
        groups: dict[str, list[Suggestion]] = {}
        for s in suggestions:
            names = {group_of(path) for path in _paths(s)}
            if len(names) == 1:
                groups.setdefault(names.pop(), []).append(s)
        for name in sorted(groups):
            members = groups[name]
            if len(members) == len(suggestions):
                continue  # the same as ``all``
            where = "files at the repository root" if name == ROOT else f"{name}/"
            title = f"Only {where} ({len(members)} of {len(suggestions)})"
            variants.append(self._variant(f"dir:{name}", title, members))
        low = [s for s in suggestions if s.risk is Risk.LOW]
        if low and len(low) < len(suggestions):
            title = f"Low-risk only ({len(low)} of {len(suggestions)})"
            variants.append(self._variant("low-risk", title, low))
        return variants

    def _variant(self, key: str, title: str, members: Sequence[Suggestion]) -> Variant:
        return Variant(key=key, title=title, suggestion_ids=tuple(s.id for s in members))


def _paths(s: Suggestion) -> set[str]:
    """Every path the suggestion reads or writes (both names of a rename)."""
    try:
        return {path for patch in file_patches(s.diff) for path in patch.claims}
    except Invalid as exc:
        raise Invalid(f"suggestion {s.id}: {exc.detail}") from None


@hookimpl
def storykit_register_planners(register: Callable[[Planner], None], settings: Settings) -> None:
    """Register the ``default`` planner."""
    register(DefaultPlanner())
