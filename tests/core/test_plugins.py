"""The plugin manager factory, entry points, and the out-of-tree plugin from the tutorial."""

from __future__ import annotations

import logging
import os
import re
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
from storykit.models import Event
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
    # pluggy calls the plugin registered last first: its source keeps the name.
    assert [(name, reg.plugin) for name, reg in registry.sources.items()] == [("same", "two")]
    [failure] = registry.failures
    assert failure.plugin == "one"
    assert "already registered by 'two'" in failure.message


class _Named:
    """A source that records nothing: only its name matters here."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def generate(self, request: Any) -> list[Any]:
        return []


def _ordered_plugins(seen: list[str]) -> tuple[object, object]:
    class Early:
        @hookimpl(tryfirst=True)
        def storykit_register_sources(self, register: Any) -> None:
            seen.append("early")
            register(_Named("from-early"))

        @hookimpl(tryfirst=True)
        def storykit_on_event(self, event: Event) -> None:
            seen.append("early")

    class Late:
        @hookimpl(trylast=True)
        def storykit_register_sources(self, register: Any) -> None:
            seen.append("late")
            register(_Named("from-late"))

        @hookimpl(trylast=True)
        async def storykit_on_event(self, event: Event) -> None:
            seen.append("late")

    return Early(), Late()


@pytest.mark.anyio
async def test_hooks_run_in_pluggys_order_tryfirst_first_and_trylast_last(
    tmp_path: Path,
) -> None:
    seen: list[str] = []
    early, late = _ordered_plugins(seen)
    pm = get_plugin_manager(load_entrypoints=False)
    # Registered first, so plain LIFO alone would call it last: tryfirst must win.
    pm.register(early, name="early")
    pm.register(late, name="late")
    pm.hook.storykit_register_sources(register=lambda backend: None, settings=None)
    pluggys_order = list(seen)
    seen.clear()

    registry = Registry(pm, make_settings(tmp_path))
    assert seen == pluggys_order == ["early", "late"]
    assert list(registry.sources) == ["from-early", "from-late"]  # the first is the default
    assert [r.plugin for r in registry.sources.values()] == ["early", "late"]

    seen.clear()
    await registry.notify(Event(id=1, type="test.event", data={}))
    assert seen == ["early", "late"]


def test_a_failing_implementation_is_recorded_and_the_others_still_run(tmp_path: Path) -> None:
    class Broken:
        @hookimpl(tryfirst=True)
        def storykit_register_sources(self, register: Any) -> None:
            raise RuntimeError("boom")

    class Good:
        @hookimpl
        def storykit_register_sources(self, register: Any) -> None:
            register(_Named("good"))

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Good(), name="good")
    pm.register(Broken(), name="broken")
    registry = Registry(pm, make_settings(tmp_path))
    assert list(registry.sources) == ["good"]
    [failure] = registry.failures
    assert (failure.plugin, failure.hook) == ("broken", "storykit_register_sources")
    assert failure.message == "RuntimeError: boom"


def test_a_misspelt_hook_in_a_handed_in_manager_is_a_plugin_error(tmp_path: Path) -> None:
    pm = pluggy.PluginManager(hookspecs.PROJECT)  # built by the caller, never checked
    pm.add_hookspecs(hookspecs)

    class Typo:
        @hookimpl
        def storykit_register_polices(self, register: Any) -> None: ...

    pm.register(Typo(), name="typo")
    with pytest.raises(PluginError) as caught:
        Registry(pm, make_settings(tmp_path))
    assert caught.value.plugin == "typo"
    assert caught.value.hook == "storykit_register_polices"
    assert "did you mean storykit_register_policies?" in caught.value.detail


@pytest.mark.anyio
async def test_pluggys_own_tracing_sees_every_hook_call(tmp_path: Path) -> None:
    seen: list[str] = []
    early, late = _ordered_plugins(seen)
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(early, name="early")
    pm.register(late, name="late")
    lines: list[str] = []
    pm.trace.root.setwriter(lines.append)
    pm.enable_tracing()
    registry = Registry(pm, make_settings(tmp_path))
    await registry.notify(Event(id=1, type="test.event", data={}))
    calls = [text.split()[0] for text in lines]  # "<hook> [hook]", "finish <hook> --> …"
    # One call per plugin (each runs on its own, so one that raises cannot stop the others).
    assert calls.count("storykit_register_sources") == 2
    assert calls.count("storykit_on_event") == 2


@pytest.mark.anyio
async def test_trace_hooks_logs_pluggys_trace_and_each_calls_duration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="storykit.plugins")

    class Observer:
        @hookimpl
        def storykit_register_sources(self, register: Any) -> None:
            register(_Named("s"))

        @hookimpl
        def storykit_on_event(self, event: Event) -> None: ...

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(Observer(), name="observer")
    settings = make_settings(tmp_path, trace_hooks=True)
    Registry(pm, settings)
    registry = Registry(pm, settings)  # a second registry on the manager traces once, not twice
    caplog.clear()
    await registry.notify(Event(id=1, type="test.event", data={}))

    records = [r for r in caplog.records if r.name == "storykit.plugins"]
    traced = [r.getMessage() for r in records if r.getMessage().startswith("hook trace")]
    [call] = [m for m in traced if m.startswith("hook trace storykit_on_event [hook]")]
    assert "event: Event(id=1, type='test.event'" in call
    assert any(m.startswith("hook trace finish storykit_on_event") for m in traced)
    [timed] = [r for r in records if r.getMessage().startswith("hook call ")]
    assert re.fullmatch(r"hook call observer storykit_on_event \d+\.\d ms", timed.getMessage())
    assert (timed.plugin, timed.hook) == ("observer", "storykit_on_event")  # type: ignore[attr-defined]
    assert isinstance(timed.ms, float)  # type: ignore[attr-defined]


def test_trace_hooks_times_the_registration_calls(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="storykit.plugins")

    class P:
        @hookimpl
        def storykit_register_sources(self, register: Any) -> None:
            register(_Named("s"))

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(P(), name="p")
    Registry(pm, make_settings(tmp_path, trace_hooks=True))
    messages = [r.getMessage() for r in caplog.records if r.name == "storykit.plugins"]
    assert any(m.startswith("hook trace storykit_register_sources [hook]") for m in messages)
    timed = [r for r in caplog.records if r.getMessage().startswith("hook registration ")]
    assert [(r.plugin, r.hook) for r in timed] == [("p", "storykit_register_sources")]  # type: ignore[attr-defined]
    # "hook call" lines are the backends' and observers' calls (the CLI prints those).
    assert not [r for r in caplog.records if r.getMessage().startswith("hook call")]


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


def test_the_plugin_reference_is_markdown_and_documents_the_types_plugins_see() -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert "``" not in docs.replace("```", "")  # reST literals became Markdown ones
    assert not re.search(r":(class|mod|meth|func|attr):`", docs)  # no Sphinx roles
    assert "::\n" not in docs
    for name, module in [
        ("Draft", "storykit.backends"),
        ("GenerateRequest", "storykit.backends"),
        ("Suggestion", "storykit.models"),
        ("Variant", "storykit.models"),
        ("Conflict", "storykit.models"),
    ]:
        section = docs.split(f"## `{name}`\n", 1)[1].split("\n## ", 1)[0]
        assert f"`from {module} import {name}`" in section
        assert "| field | type | default |" in section
    progress = docs.split("## `GenerateRequest`\n", 1)[1].split("\n## ", 1)[0]
    assert re.search(
        r"\| `progress` \| `Progress \\\| None` \| `None` \| .*suggest\.progress", progress
    )
    suggestion = docs.split("## `Suggestion`\n", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"\| `diff_hash` \| `str` \| required \| .*approval", suggestion)
