"""The ``ruff`` plugin: a suggestion source and a policy, both built on ruff.

- source ``ruff`` (:mod:`.source`): ruff's safe automatic fixes of the files committed
  at ``HEAD``, one suggestion per file and rule (:mod:`.fixes` turns diagnostics into
  drafts);
- policy ``ruff`` (:mod:`.findings`): whether a diff from outside applies to its base,
  then ruff's diagnostics on the lines it adds.

Both read committed files exported into a temporary folder (:mod:`.export`), never the
working tree. Configuration: the repository's own ruff configuration (``ruff.toml``,
``.ruff.toml`` or a ``pyproject.toml`` with ``[tool.ruff]``, as committed) if it has one;
otherwise ruff's defaults with ``STORYKIT_RUFF_SELECT`` (default ``E,F,W,I,UP,B``) and
the target version read from ``requires-python``. The policy's own section of the policy
document says how much each of its checks weighs.
"""

from __future__ import annotations

from collections.abc import Callable

from storykit.backends import Policy, SuggestionSource
from storykit.hookspecs import hookimpl
from storykit.settings import Settings
from storykit_plugins.ruff.findings import RuffPolicy
from storykit_plugins.ruff.source import RuffSource
from storykit_plugins.ruff.tool import DEFAULT_SELECT, Ruff

__all__ = [
    "DEFAULT_SELECT",
    "Ruff",
    "RuffPolicy",
    "RuffSource",
    "storykit_register_policies",
    "storykit_register_sources",
]


@hookimpl
def storykit_register_sources(
    register: Callable[[SuggestionSource], None], settings: Settings
) -> None:
    """Register the ``ruff`` source (ruff ships with storykit, so it is always available)."""
    register(RuffSource(Ruff.from_settings(settings)))


@hookimpl
def storykit_register_policies(register: Callable[[Policy], None], settings: Settings) -> None:
    """Register the ``ruff`` policy: does a diff apply to its base, what ruff says of it."""
    register(RuffPolicy(Ruff.from_settings(settings)))
