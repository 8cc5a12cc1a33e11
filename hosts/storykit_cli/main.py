"""``storykit``: the command line. Heavy modules are imported inside commands, so
``storykit --help`` starts fast (a test checks that it imports no core module)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from storykit_cli import errors
from storykit_cli.client import Connection
from storykit_cli.commands.mcp import mcp
from storykit_cli.commands.plan import plan, pr
from storykit_cli.commands.policy import policy
from storykit_cli.commands.suggest import suggest
from storykit_cli.commands.system import events, keys, plugins
from storykit_cli.context import Globals, notice, pass_globals

__all__ = ["cli", "main"]


class StorykitGroup(click.Group):
    """The root group: the one place every error becomes a line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except BaseException as exc:  # every other error, wrapped in task groups or not
            inner = errors.unwrap(exc)
            if isinstance(inner, click.exceptions.Exit | click.ClickException | SystemExit):
                raise inner from None
            if isinstance(inner, KeyboardInterrupt):
                raise click.exceptions.Exit(errors.INTERRUPTED) from None
            if not isinstance(inner, Exception):
                raise
            key = ctx.params.get("key")
            if ctx.params.get("debug"):
                import traceback

                trace = "".join(traceback.format_exception(exc))
                sys.stderr.write(errors.redact(trace, key))
            raise errors.redacted(errors.failure_for(inner), key) from None


@click.group(
    cls=StorykitGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--url",
    envvar="STORYKIT_URL",
    show_envvar=True,
    metavar="URL",
    help="Work against the server at URL instead of the local data directory.",
)
@click.option(
    "--key",
    envvar="STORYKIT_API_KEY",
    show_envvar=True,
    metavar="KEY",
    help="The API key for --url (prefer the environment variable: it stays out of your"
    " shell history).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="STORYKIT_DATA_DIR",
    show_envvar=True,
    help="The local data directory [default: a per-repository folder].",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="storykit")
@click.pass_context
def cli(
    ctx: click.Context, url: str | None, key: str | None, data_dir: Path | None, debug: bool
) -> None:
    """storykit: review what machines propose before it reaches your code.

    Works on this repository's local data directory, as a local admin named after
    your OS user; or, with --url and --key, against a running server with that key's
    role. Both print the same, and --json prints exactly the HTTP API's JSON.

    \b
    Examples:
      storykit serve                          start the server and the dashboard
      storykit suggest generate               run the suggestion sources
      storykit suggest list --status pending
      storykit suggest review sug_01J… --approve
      storykit plan create --goal "Lint fixes" && storykit pr plan_01J…
      STORYKIT_URL=http://127.0.0.1:8001 STORYKIT_API_KEY=… storykit suggest list

    \b
    Shell completion (bash; use zsh_source or fish_source for those shells):
      eval "$(_STORYKIT_COMPLETE=bash_source storykit)"
    """
    ctx.obj = Globals(
        # A pasted key often carries a space or a newline: trim it, never guess more.
        connection=Connection(
            url=url or None, key=(key or "").strip() or None, data_dir=data_dir, on_notice=notice
        ),
        debug=debug,
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", "-p", default=8001, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--worker",
    type=click.Choice(["asyncio", "uvloop", "trio"]),
    default="asyncio",
    show_default=True,
    help="Hypercorn worker class (uvloop: asyncio on uvloop's event loop).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    envvar="STORYKIT_DATA_DIR",
    help="Where the database and artifacts live [default: a per-repository folder].",
)
@pass_globals
def serve(g: Globals, host: str, port: int, worker: str, data_dir: str | None) -> None:
    """Start the server (REST, live events, metrics and the dashboard).

    \b
    Binds 127.0.0.1 unless told otherwise. Serves REPO_PATH (default: the
    repository you are in) and refuses to start when it is no git repository, or
    when a server already runs on the same data directory. With no API_TOKENS set,
    two keys are generated once, printed, and kept in the data directory: yours
    (admin, in api-key) and one for a coding agent (agent-key).

    \b
    Examples:
      storykit serve
      API_TOKENS='ci:agent=…,me:reviewer=…' storykit serve --port 8003
    """
    from storykit.settings import Settings

    try:
        from storykit_quart.serve import serve as run
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _SERVER_PACKAGES:
            raise
        raise errors.Failure(
            f"storykit serve needs the web server's packages ({exc.name} is missing)",
            hint="pip install 'storykit[server]'",
        ) from None

    chosen = data_dir or g.connection.data_dir
    settings = Settings.from_env(data_dir=chosen)
    run(settings, host=host, port=port, worker=worker, say=click.echo)


_SERVER_PACKAGES = (
    "quart",
    "quart_schema",
    "quart_trio",
    "quart_cors",
    "hypercorn",
    "pydantic",
    "structlog",
    "trio",
)
"""What ``storykit[server]`` installs: one of them missing means that extra is missing."""


for command in (suggest, plan, pr, policy, plugins, events, keys, mcp):
    cli.add_command(command)


def main() -> None:
    try:
        cli(prog_name="storykit")
    except KeyboardInterrupt:
        sys.exit(130)
