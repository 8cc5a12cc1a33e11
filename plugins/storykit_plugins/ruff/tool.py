"""Running ruff: which binary, which options, one ``ruff check`` and its JSON output."""

from __future__ import annotations

import importlib
import json
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import anyio

from storykit.errors import BackendError
from storykit.settings import Settings
from storykit_plugins._git import summarize

__all__ = ["DEFAULT_SELECT", "Diagnostic", "Ruff", "configures_ruff", "target_version"]

DEFAULT_SELECT = ("E", "F", "W", "I", "UP", "B")
_TOOL_RUFF = re.compile(r"^\s*\[\s*tool\.ruff\s*[\].]", re.MULTILINE)
_MIN_PY = re.compile(r">=\s*3\.(\d+)")

Diagnostic = Mapping[str, Any]
"""One entry of ``ruff check --output-format json``."""


def _ruff_command() -> list[str]:
    try:
        return [str(importlib.import_module("ruff").find_ruff_bin())]
    except (ImportError, AttributeError, FileNotFoundError):
        return [sys.executable, "-m", "ruff"]


def configures_ruff(path: str, text: str) -> bool:
    """Whether a committed configuration file (by its path and text) configures ruff."""
    return PurePosixPath(path).name != "pyproject.toml" or bool(_TOOL_RUFF.search(text))


def target_version(pyproject: str) -> str | None:
    """ruff's ``--target-version`` from a ``pyproject.toml``'s ``requires-python``."""
    try:
        spec = tomllib.loads(pyproject).get("project", {}).get("requires-python", "")
    except tomllib.TOMLDecodeError:
        return None
    match = _MIN_PY.search(spec) if isinstance(spec, str) else None
    return f"py3{match.group(1)}" if match else None


class Ruff:
    """The ruff the ``ruff`` source and policy share: one binary, one rule selection."""

    def __init__(
        self,
        *,
        select: Sequence[str] = DEFAULT_SELECT,
        command: Sequence[str] | None = None,
        scratch_dir: Path | None = None,
    ) -> None:
        self.select = tuple(select)
        self.command = list(command) if command else _ruff_command()
        self.scratch_dir = scratch_dir
        """Where exports go; None: a memory-backed folder if one has room, else the temp dir."""
        self._unfixable: tuple[str, ...] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Ruff:
        raw = settings.get("STORYKIT_RUFF_SELECT") or ""
        select = tuple(part.strip() for part in raw.split(",") if part.strip())
        scratch = (settings.get("STORYKIT_RUFF_SCRATCH") or "").strip()
        return cls(select=select or DEFAULT_SELECT, scratch_dir=Path(scratch) if scratch else None)

    async def options(self, configs: Mapping[str, str], *, only_fixable: bool) -> list[str]:
        """The options for a tree whose configuration files (path → text) are ``configs``."""
        if any(configures_ruff(path, text) for path, text in configs.items()):
            return []  # ruff finds the repository's configuration next to the files
        options = ["--isolated", "--select", ",".join(self.select)]
        target = target_version(configs.get("pyproject.toml", ""))
        if target:
            options += ["--target-version", target]
        # Unfixable rules cannot become suggestions; skipping them makes ruff's output
        # (and its parsing) far smaller. Not when RUF100 may run: it would then report
        # suppression comments for the skipped rules as unused.
        if only_fixable and not any("RUF100".startswith(s) or s == "ALL" for s in self.select):
            unfixable = await self._unfixable_rules()
            if unfixable:
                options += ["--extend-ignore", ",".join(unfixable)]
        return options

    async def _unfixable_rules(self) -> tuple[str, ...]:
        if self._unfixable is None:
            try:
                done = await anyio.run_process(
                    [*self.command, "rule", "--all", "--output-format", "json"], check=False
                )
                rules = json.loads(done.stdout) if done.returncode == 0 else []
            except (OSError, ValueError):
                rules = []  # only an optimisation; ``ruff check`` reports a missing ruff
            self._unfixable = tuple(
                r["code"]
                for r in rules
                if r.get("code")
                and r.get("fix_availability") == "None"
                # A removed code may be remapped to a live rule; leave those alone.
                and not any(word in str(r.get("status")) for word in ("Removed", "Deprecated"))
            )
        return self._unfixable

    async def check(
        self, root: Path, targets: Sequence[str], options: Sequence[str]
    ) -> list[Diagnostic]:
        """``ruff check`` of ``targets`` (relative to ``root``), its diagnostics."""
        args = [
            *self.command,
            "check",
            "--no-cache",
            "--no-fix",
            "--exit-zero",
            "--force-exclude",
            "--output-format",
            "json",
            *options,
            "--",
            *targets,
        ]
        try:
            done = await anyio.run_process(args, cwd=root, check=False)
        except FileNotFoundError:
            raise BackendError(f"ruff is not installed ({self.command[0]} not found)") from None
        if done.returncode != 0:
            raise BackendError(f"ruff check failed: {summarize(done.stderr)}")
        result = json.loads(done.stdout or b"[]")
        return result if isinstance(result, list) else []
