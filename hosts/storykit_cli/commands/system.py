"""``storykit plugins``, ``storykit events`` and ``storykit keys``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from storykit_cli.context import Globals, json_option, output, pass_globals, run
from storykit_cli.user import local_user

if TYPE_CHECKING:
    from storykit_cli.transport import Client

__all__ = ["events", "keys", "plugins"]


@click.command()
@json_option
@pass_globals
def plugins(g: Globals, as_json: bool) -> None:
    """List the loaded plugins, what each registered, and recent plugin errors.

    In local mode these are the plugins this machine loads (STORYKIT_LOAD_PLUGINS
    limits them); with --url, the server's.

    \b
    Examples:
      storykit plugins
      storykit --url http://127.0.0.1:8001 plugins --json
    """
    from storykit_cli import render

    output(run(g, lambda c: c.plugins()), as_json, render.plugins)


@click.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they happen.")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    metavar="ID",
    help="Start after this event id [default: 0; with --follow, from now on].",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    metavar="N",
    default=100,
    show_default=True,
    help="At most this many events (without --follow).",
)
@json_option
@pass_globals
def events(g: Globals, follow: bool, after: int | None, limit: int, as_json: bool) -> None:
    """Print the event log, oldest first, or follow the live stream.

    With --follow, --json prints one JSON event per line. Against a server
    (--url), a dropped connection is retried and resumed with Last-Event-ID, so
    no event is missed or repeated across a server restart. Locally, events that
    other processes (a server, another CLI) write to the same data directory
    are picked up within about a second.

    \b
    Examples:
      storykit events                       the first 100 events
      storykit events --after 100 --limit 50
      storykit events --follow              new events, as they happen
      storykit events -f --after 0 --json   everything, then new ones, as JSON lines
    """
    from storykit_cli import render

    if not follow:
        page = run(g, lambda c: c.read_events(after=after or 0, limit=limit))
        output(page, as_json, lambda p: "\n".join(render.event_line(e) for e in p["items"]))
        return

    async def follow_all(client: Client) -> None:
        from storykit_cli import watch

        async for event in watch.follow(client, after=after, on_notice=g.connection.on_notice):
            click.echo(render.json_line(event) if as_json else render.event_line(event))

    run(g, follow_all)


@click.group()
def keys() -> None:
    """API keys for a server's API_TOKENS.

    \b
    Examples:
      storykit keys new --name ci-bot --role agent
    """


_ROLES = ("agent", "reviewer", "admin")


@keys.command()
@click.option("--name", "-n", default=None, help="Who uses the key [default: your user name].")
@click.option(
    "--role",
    "-r",
    type=click.Choice(_ROLES),
    default="agent",
    show_default=True,
    help="agent: submit and read; reviewer: also review, plan, open PRs; admin: also policies.",
)
@json_option
def new(name: str | None, role: str, as_json: bool) -> None:
    """Make a new random API key and print the API_TOKENS entry to add.

    The key is printed once and stored nowhere: add the entry to the server's
    API_TOKENS (comma separated) and restart it, and hand the key to whoever uses it.

    \b
    Examples:
      storykit keys new --name ci-bot
      storykit keys new --name alice --role reviewer
    """
    from storykit.auth import NAME_PATTERN, generate_key, parse_api_tokens
    from storykit_cli.errors import Failure

    name = name or local_user()
    if not NAME_PATTERN.fullmatch(name):
        raise Failure(
            f"name {name!r} cannot be used in API_TOKENS",
            hint="use letters, digits and . _ @ - (at most 64)",
        )
    key = generate_key()
    entry = f"{name}:{role}={key}"
    parse_api_tokens(entry)  # the server must accept exactly what we print
    data = {"name": name, "role": role, "key": key, "api_tokens_entry": entry}
    output(
        data,
        as_json,
        lambda d: (
            f"key for {d['name']} ({d['role']}):\n\n    {d['key']}\n\n"
            f"add this entry to the server's API_TOKENS (comma separated):\n\n"
            f"    {d['api_tokens_entry']}\n\n"
            "the key is shown only now; storykit keeps no copy."
        ),
    )
