"""``storykit``: the command line. Heavy modules are imported inside commands, so
``storykit --help`` starts fast."""

from __future__ import annotations

import sys

import click

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="storykit")
def cli() -> None:
    """storykit: review what machines propose before it reaches your code.

    \b
    Examples:
      storykit serve                     start the server and the dashboard
      storykit serve --port 8003 --worker trio
    """


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", "-p", default=8001, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--worker",
    type=click.Choice(["asyncio", "trio"]),
    default="asyncio",
    show_default=True,
    help="Hypercorn worker class.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    envvar="STORYKIT_DATA_DIR",
    help="Where the database and artifacts live [default: a per-repository folder].",
)
def serve(host: str, port: int, worker: str, data_dir: str | None) -> None:
    """Start the server (REST, live events, metrics and the dashboard).

    \b
    Binds 127.0.0.1 unless told otherwise. With no API_TOKENS set, an admin key
    is generated once, printed, and kept in the data directory.

    \b
    Examples:
      storykit serve
      API_TOKENS='ci:agent=…,me:reviewer=…' storykit serve --port 8003
    """
    from storykit.errors import StorykitError
    from storykit.settings import Settings
    from storykit_quart.serve import serve as run

    try:
        settings = Settings.from_env(data_dir=data_dir)
        run(settings, host=host, port=port, worker=worker, say=click.echo)
    except StorykitError as exc:
        raise click.ClickException(exc.detail) from None


def main() -> None:
    try:
        cli(prog_name="storykit")
    except KeyboardInterrupt:
        sys.exit(130)
