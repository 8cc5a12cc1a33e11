"""The plugin manager factory, entry points, and the out-of-tree plugin from the tutorial."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pluggy
import pytest

from storykit import hookspecs
from storykit.errors import PluginError
from storykit.hookspecs import hookimpl
from storykit.plugins import ENTRY_POINT_GROUP, Registry, get_plugin_manager
from storykit.settings import SettingsError
from storykit.testing import make_settings

ROOT = Path(__file__).resolve().parents[2]


def test_each_call_builds_an_independent_manager() -> None:
    a = get_plugin_manager(load_entrypoints=False)
    b = get_plugin_manager(load_entrypoints=False)

    class P:
        @hookimpl
        def storykit_on_event(self, event: Any) -> None: ...

    a.register(P(), name="p")
    assert a.get_plugin("p") is not None
    assert b.get_plugin("p") is None


def test_a_misspelled_hook_fails_loudly() -> None:
    pm = get_plugin_manager(load_entrypoints=False)

    class Typo:
        @hookimpl
        def storykit_register_polices(self, register: Any) -> None: ...

    pm.register(Typo(), name="typo")
    with pytest.raises(pluggy.PluginValidationError, match="storykit_register_polices"):
        pm.check_pending()


def test_first_party_plugins_load_through_the_entry_point_group() -> None:
    import importlib.metadata

    names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    pm = get_plugin_manager(only=sorted(names))
    assert {name for name, _ in pm.list_name_plugin()} == names


def test_load_plugins_limits_which_installed_plugins_load() -> None:
    assert get_plugin_manager(only=[]).list_name_plugin() == []
    pm = get_plugin_manager(only=["dry-run"])
    assert [name for name, _ in pm.list_name_plugin()] == ["dry-run"]


def test_minus_name_leaves_one_plugin_out_and_keeps_the_rest() -> None:
    import importlib.metadata

    names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    pm = get_plugin_manager(only=["-opa"])
    assert {name for name, _ in pm.list_name_plugin()} == names - {"opa"}
    pm = get_plugin_manager(only=["-opa", "-git"])
    assert {name for name, _ in pm.list_name_plugin()} == names - {"opa", "git"}


@pytest.mark.parametrize("only", [["todo-fixer", "no-pint"], ["-no-pint"], ["dry-run", "-nope"]])
def test_a_name_no_installed_plugin_has_stops_loading(only: list[str]) -> None:
    with pytest.raises(SettingsError) as caught:
        get_plugin_manager(only=only)
    detail = caught.value.detail
    assert detail.startswith("STORYKIT_LOAD_PLUGINS: no installed plugin is called")
    unknown = [n.removeprefix("-") for n in only if n.removeprefix("-") not in {"dry-run"}]
    assert all(repr(n) in detail for n in unknown)
    assert "installed: " in detail and "dry-run" in detail and "opa" in detail


def test_load_plugins_is_checked_when_the_settings_are_read(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"STORYKIT_LOAD_PLUGINS: .*'no-pint'.*installed: "):
        make_settings(tmp_path, {"STORYKIT_LOAD_PLUGINS": "todo-fixer,no-pint"})
    with pytest.raises(SettingsError, match=r"STORYKIT_LOAD_PLUGINS: .*'-' with no name"):
        make_settings(tmp_path, {"STORYKIT_LOAD_PLUGINS": "dry-run,-"})
    settings = make_settings(tmp_path, {"STORYKIT_LOAD_PLUGINS": "-opa"})
    assert settings.load_plugins is not None and "opa" not in settings.load_plugins
    assert "dry-run" in settings.load_plugins
    assert make_settings(tmp_path, {"STORYKIT_LOAD_PLUGINS": ""}).load_plugins == ()
    assert make_settings(tmp_path).load_plugins is None


def test_a_plugin_that_cannot_be_imported_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    ep = importlib.metadata.EntryPoint(
        name="ghost", value="storykit_no_such_module", group=ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [ep])
    with pytest.raises(PluginError, match=r"ghost.*storykit_no_such_module"):
        get_plugin_manager()


def test_registry_describes_plugins_hooks_and_backends(tmp_path: Path) -> None:
    class Source:
        name = "s1"

        async def generate(self, request: Any) -> list[Any]:
            return []

    class P:
        @hookimpl
        def storykit_register_sources(self, register: Any) -> None:
            register(Source())

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(P(), name="mine")
    registry = Registry(pm, make_settings(tmp_path))
    [described] = registry.describe()
    assert described["name"] == "mine"
    assert described["hooks"] == ["storykit_register_sources"]
    assert described["backends"] == [{"kind": "sources", "name": "s1"}]


def test_two_backends_with_one_name_is_reported(tmp_path: Path) -> None:
    class Source:
        name = "same"

        async def generate(self, request: Any) -> list[Any]:
            return []

    class P:
        @hookimpl
        def storykit_register_sources(self, register: Any) -> None:
            register(Source())

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(P(), name="one")
    pm.register(P(), name="two")
    registry = Registry(pm, make_settings(tmp_path))
    assert list(registry.sources) == ["same"]
    assert "already registered by 'one'" in registry.failures[0].message


@pytest.mark.slow
def test_an_out_of_tree_plugin_package_installs_loads_and_is_used(tmp_path: Path) -> None:
    target = tmp_path / "site"
    source = tmp_path / "hello_plugin"  # a copy: building writes build/ and egg-info beside it
    shutil.copytree(ROOT / "tests" / "hello_plugin", source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        env=os.environ | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    script = textwrap.dedent(
        """
        import anyio, pathlib, sys
        from storykit.testing import open_core, AGENT, make_diff

        async def main():
            async with open_core(
                pathlib.Path(sys.argv[1]),
                load_entrypoints=True,
                env={"STORYKIT_LOAD_PLUGINS": "hello"},
            ) as core:
                names = [p["name"] for p in core.plugins()]
                assert "hello" in names, names
                diff = make_diff("a.py", "", "print('Hello')\\n")
                s = await core.submit(AGENT, title="t", diff=diff)
                print(sorted(f.rule for f in s.findings if f.policy == "hello"))

        anyio.run(main)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "run")],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(target)},
    )
    assert out.stdout.strip() == "['hello.word']"


def test_every_hook_is_documented_and_tested() -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text()
    tests = "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    hooks = [name for name in vars(hookspecs) if name.startswith("storykit_")]
    assert len(hooks) == 6
    for name in hooks:
        assert f"## `{name}`" in docs, f"{name} is missing from docs/plugins.md"
        assert f"def {name}(" in tests, f"no test implements {name}"
        spec = getattr(hookspecs, name)
        assert spec.__doc__ and "Example" in spec.__doc__, f"{name} has no example"


def test_the_generated_hook_reference_is_current() -> None:
    from storykit.docgen import hook_reference

    assert (ROOT / "docs" / "plugins.md").read_text() == hook_reference()
