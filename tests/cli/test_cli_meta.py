"""The CLI as a whole: cold start, help texts, generated docs, completion, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from storykit.auth import Role
from storykit.models import Risk, Status
from storykit_cli import docs, errors
from storykit_cli.commands import suggest, system
from storykit_cli.main import cli

ROOT = Path(__file__).resolve().parents[2]

# What `--help` must not load: the core beyond its tiny package, the web host, the
# HTTP client and every library behind them.
HEAVY = (
    "storykit.",
    "storykit_quart",
    "storykit_plugins",
    "quart",
    "quart_schema",
    "quart_trio",
    "hypercorn",
    "werkzeug",
    "httpx",
    "httpx_sse",
    "httpcore",
    "pydantic",
    "aiosqlite",
    "sqlite3",
    "anyio",
    "trio",
    "sniffio",
    "pluggy",
    "unidiff",
    "prometheus_client",
    "structlog",
    "asyncio",
)


def _commands(
    command: click.Command = cli, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def _loaded_modules(code: str, env: dict[str, str] | None = None) -> list[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return [m for m in loaded if m.startswith(HEAVY) or m in {h.rstrip(".") for h in HEAVY}]


def test_help_imports_no_heavy_module() -> None:
    paths = [list(path) for path, _ in _commands()]
    code = (
        "from storykit_cli.main import cli\n"
        f"for path in {paths!r}:\n"
        "    cli([*path, '--help'], standalone_mode=False)\n"
    )
    assert _loaded_modules(code) == []


def test_shell_completion_is_light_and_completes_commands() -> None:
    env = dict(
        os.environ, _STORYKIT_COMPLETE="bash_complete", COMP_WORDS="storykit sug", COMP_CWORD="1"
    )
    done = subprocess.run(
        [sys.executable, "-m", "storykit_cli"], env=env, capture_output=True, text=True
    )
    assert "plain,suggest" in done.stdout.splitlines()
    env = dict(os.environ, _STORYKIT_COMPLETE="bash_source")
    script = subprocess.run(
        [sys.executable, "-m", "storykit_cli"], env=env, capture_output=True, text=True
    ).stdout
    assert "_storykit_completion" in script and "complete -o nosort" in script
    code = (
        "import os\n"
        "os.environ.update(_STORYKIT_COMPLETE='bash_complete', COMP_WORDS='storykit suggest l',"
        " COMP_CWORD='2')\n"
        "from storykit_cli.main import cli\n"
        "try:\n    cli(prog_name='storykit')\nexcept SystemExit:\n    pass\n"
    )
    assert _loaded_modules(code) == []


def test_every_command_has_examples_and_every_leaf_has_json() -> None:
    for path, command in _commands():
        assert "Examples:" in (command.help or ""), path
        is_leaf = not isinstance(command, click.Group)
        if is_leaf and path not in (("serve",), ("mcp",)):  # servers: they print no result
            assert any("--json" in p.opts for p in command.params), path


def test_choices_match_the_core() -> None:
    assert set(suggest.STATUSES) == {s.value for s in Status}
    assert set(suggest.RISKS) == {r.value for r in Risk}
    assert set(system._ROLES) == {r.value for r in Role}


def test_the_list_filter_is_spelled_by_the_core_alone() -> None:
    """``suggest list``'s filter options and the web's documented query string are the
    core's filter keys: each host parses them with ``SuggestionFilter.parse``, so a key
    added to the core and not here would be silently dropped."""
    from storykit.filters import KEYS
    from storykit_quart.schemas import SuggestionQuery

    paging = {"after", "limit"}
    options = {p.name for p in suggest.list_.params if p.name not in {"as_json", *paging}}
    assert options == set(KEYS)
    assert set(SuggestionQuery.model_fields) - paging == set(KEYS)


def test_the_exit_code_table_covers_every_code() -> None:
    codes = {e.code for e in errors.EXIT_CODES}
    named = {
        errors.OK,
        errors.USER_ERROR,
        errors.USAGE,
        errors.CONNECTION,
        errors.SERVER,
        errors.INTERNAL,
        errors.INTERRUPTED,
    }
    assert codes == named and len(named) == len(errors.EXIT_CODES)


def test_docs_cli_md_is_generated_from_the_help() -> None:
    assert docs.generators() == {"docs/cli.md": docs.render_markdown}
    text = docs.render_markdown()
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == text, "docs/cli.md is stale: python -m storykit.docgen --write"
    for path, _ in _commands():
        if path:
            assert f"### `storykit {' '.join(path)}`" in text
    assert "| 3 | cannot reach the server given with `--url` |" in text
    assert "_STORYKIT_COMPLETE=bash_source storykit" in text


def test_docs_do_not_depend_on_the_terminal() -> None:
    env = dict(os.environ, COLUMNS="50")
    code = "from storykit_cli.docs import render_markdown; print(render_markdown(), end='')"
    narrow = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert narrow == docs.render_markdown()
