"""Packaging by need: each part of storykit imports only what its extra installs.

For each part (the core, the CLI, the web host, the first-party plugins, the MCP host)
a fresh interpreter imports every module of it, recording each import its modules
make themselves (a dependency's own optional imports do not count); every
third-party distribution so imported must be a requirement of that part
(``pyproject.toml``: the core's ``dependencies`` plus the part's extras), or a
dependency of one.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# part → (its packages, the extras it is installed with)
PARTS = {
    "core": (["storykit"], []),
    "cli": (["storykit_cli", "storykit_watchdog"], ["cli"]),
    "server": (["storykit_quart"], ["server"]),
    "plugins": (["storykit_plugins"], ["plugins"]),
    "mcp": (["storykit_mcp"], ["mcp"]),
}
# Modules that are optional inside a part, each behind its own extra.
OPTIONAL = {
    "storykit.store.postgres": "postgres",
    "storykit.store._pg_driver": "postgres",
    "storykit.store._pg_batch": "postgres",
    "storykit.store._pg_schema": "postgres",
    "storykit.ratelimit": "redis",
    "storykit.testing": "",  # test helpers: imported by test runners only
    "storykit.docgen": "",  # a developer tool
    "storykit_quart.docs": "",
    "storykit_cli.docs": "",
}

_PROBE = r"""
import builtins, importlib, json, pkgutil, sys
ours, skip = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
direct = set()
real_import = builtins.__import__

def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__", "")
    if level == 0 and importer.partition(".")[0] in ours:
        direct.add(name.partition(".")[0])
    return real_import(name, globals, locals, fromlist, level)

builtins.__import__ = recording_import
for name in ours:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        if info.name not in skip and not info.name.endswith(".__main__"):
            importlib.import_module(info.name)
print(json.dumps(sorted(direct)))
"""


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


@cache
def _closure(names: frozenset[str]) -> frozenset[str]:
    """``names`` and every distribution they depend on (no extras), as installed."""
    seen: set[str] = set()
    todo = list(names)
    env = {"extra": ""}  # overrides this interpreter's environment, which evaluate() reads
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(_name(line))
    return frozenset(seen)


def _requirements(extras: list[str]) -> set[str]:
    names = {_name(r) for r in PROJECT["dependencies"]}
    todo = list(extras)
    while todo:
        for line in PROJECT["optional-dependencies"][todo.pop()]:
            req = Requirement(line)
            if req.name == "storykit":
                todo.extend(req.extras)
            else:
                names.add(_name(line))
    return names


@pytest.mark.parametrize("part", PARTS)
def test_each_part_imports_only_what_its_extras_install(part: str) -> None:
    packages, extras = PARTS[part]
    skip = [module for module, extra in OPTIONAL.items() if extra not in extras]
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(packages), json.dumps(skip)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    loaded = set(json.loads(probe.stdout)) - set(sys.stdlib_module_names)
    distributions = importlib.metadata.packages_distributions()
    ours = {"storykit", *(p for part_packages, _ in PARTS.values() for p in part_packages)}
    allowed = _closure(frozenset(_requirements(extras) | {"storykit"}))
    outside: dict[str, list[str]] = {}
    for module in sorted(loaded - ours):
        if module.startswith("_"):  # import hooks of editable installs and the like
            continue
        dists = distributions.get(module, [module])
        if not {_name(d) for d in dists} & allowed:
            outside[module] = dists
    assert not outside, f"{part} imports what its extras {extras} do not install: {outside}"


def test_the_core_installs_none_of_the_hosts_or_plugins_needs() -> None:
    core = {_name(r) for r in PROJECT["dependencies"]}
    for heavy in ("quart", "hypercorn", "click", "httpx", "ruff", "google-re2", "mcp", "trio"):
        assert heavy not in core
    assert "filelock" not in {
        _name(r) for rs in PROJECT["optional-dependencies"].values() for r in rs
    }
    assert set(PROJECT["optional-dependencies"]) >= {
        "server",
        "cli",
        "plugins",
        "mcp",
        "postgres",
        "all",
    }


def test_the_facade_has_what_a_plugin_author_imports() -> None:
    from storykit import Finding, Invalid, Outcome, hookimpl
    from storykit.errors import Invalid as InvalidFromErrors
    from storykit.hookspecs import hookimpl as hookimpl_from_specs
    from storykit.models import Finding as FindingFromModels
    from storykit.models import Outcome as OutcomeFromModels

    assert (hookimpl, Finding, Outcome, Invalid) == (
        hookimpl_from_specs,
        FindingFromModels,
        OutcomeFromModels,
        InvalidFromErrors,
    )


def test_a_first_party_plugin_without_its_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from storykit import PluginError
    from storykit.plugins import get_plugin_manager

    missing = importlib.metadata.EntryPoint(
        name="ruff", value="storykit_plugins.not_installed_here", group="storykit"
    )
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [missing])
    with pytest.raises(PluginError, match=r"pip install 'storykit\[plugins\]'"):
        get_plugin_manager()


def test_serve_without_the_server_extra_says_what_to_install(tmp_path: Path) -> None:
    hide_quart = (
        "import sys; sys.modules['quart'] = None; from storykit_cli.main import main;"
        " sys.argv = ['storykit', 'serve']; main()"
    )
    run = subprocess.run(
        [sys.executable, "-c", hide_quart], capture_output=True, text=True, cwd=tmp_path
    )
    assert run.returncode != 0
    assert "storykit serve needs the web server's packages (quart is missing)" in run.stderr
    assert "pip install 'storykit[server]'" in run.stderr
    assert "Traceback" not in run.stderr
