"""``docs/cli.md``: every command's ``--help``, rendered from the code so it cannot drift.

Registered for the core's doc generator (``python -m storykit.docgen``) through the
``storykit.docgen`` entry point group as ``storykit_cli.docs:generators``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import click

__all__ = ["generators", "render_markdown"]

WIDTH = 100  # fixed, so the file does not depend on the terminal it was made in

_INTRO = """\
# Command line

<!-- Generated from hosts/storykit_cli by `python -m storykit.docgen --write`;
do not edit by hand. -->

`storykit` runs every use case of the HTTP API from a terminal or a script.

## Two modes, one output

- **Local** (the default): the commands run the storykit core in-process on the local
  data directory (`--data-dir`, or `STORYKIT_DATA_DIR`, or a per-repository folder in your
  user data directory), reading the same environment settings as the server (`REPO_PATH`,
  `STORYKIT_LOAD_PLUGINS`, `PR_BACKEND`, …). No key is needed: you act as a local **admin
  named after your OS user** (`getpass.getuser()`), because whoever can read the data
  directory already holds everything in it. The usual rules still apply to that user: you
  cannot approve a suggestion you proposed yourself. A server may run on the same data
  directory at the same time; both see each other's changes.
- **Remote**: with `--url URL` (or `STORYKIT_URL`) and `--key KEY` (or `STORYKIT_API_KEY`)
  the commands call a running server, acting as that key's name and role. Prefer the
  environment variable for the key: it stays out of your shell history. The key is sent
  only in the `X-API-Key` header and never printed.

Both modes print the same thing. `--json` (on every command but `serve`) prints exactly the
JSON the HTTP API returns, with keys sorted; `events --follow --json` prints one JSON event
per line.

## Output

Tables and diffs are coloured on a terminal (added lines green, removed red, hunk headers
cyan) and plain when the output is piped or `NO_COLOR` is set; long cells are clipped only
on a terminal. `suggest generate` shows a progress line on stderr while the sources work
(on a terminal, or always with `--progress`).

## Errors and exit codes

A failure is one line on stderr, `error: …`, usually followed by what to do next. No
traceback is shown unless you pass `--debug` (before the command: `storykit --debug …`).

| code | meaning |
| --- | --- |
{exit_codes}

## Shell completion

```sh
# bash, in ~/.bashrc
eval "$(_STORYKIT_COMPLETE=bash_source storykit)"
# zsh, in ~/.zshrc
eval "$(_STORYKIT_COMPLETE=zsh_source storykit)"
# fish, in ~/.config/fish/completions/storykit.fish
_STORYKIT_COMPLETE=fish_source storykit | source
```

## Commands
"""


def _walk(
    command: click.Command, name: str, parent: click.Context | None
) -> Iterator[tuple[str, str]]:
    ctx = command.make_context(
        name,
        [],
        parent=parent,
        resilient_parsing=True,  # no "missing argument" errors while only rendering help
        terminal_width=WIDTH,
        max_content_width=WIDTH,
    )
    yield ctx.command_path, command.get_help(ctx)
    if isinstance(command, click.Group):
        for sub in command.list_commands(ctx):
            child = command.get_command(ctx, sub)
            if child is not None and not child.hidden:
                yield from _walk(child, sub, ctx)


def render_markdown() -> str:
    """The whole of ``docs/cli.md``."""
    from storykit_cli.errors import EXIT_CODES
    from storykit_cli.main import cli

    table = "\n".join(f"| {e.code} | {e.meaning} |" for e in EXIT_CODES)
    parts = [_INTRO.replace("{exit_codes}", table)]
    for path, text in _walk(cli, "storykit", None):
        parts.append(f"### `{path}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


def generators() -> dict[str, Callable[[], str]]:
    """The ``storykit.docgen`` entry point: generated file → the function that renders it."""
    return {"docs/cli.md": render_markdown}
