"""``storykit mcp``: storykit's tools for a coding agent, over MCP on stdin/stdout."""

from __future__ import annotations

import click

from storykit_cli.context import Globals, pass_globals

__all__ = ["mcp"]


@click.command()
@pass_globals
def mcp(g: Globals) -> None:
    """Serve storykit's tools to a coding agent over MCP (stdio).

    Agents that start a local command (Claude Code, Codex CLI, Cursor, VS Code, Continue,
    OpenHands) run this. With --url (or STORYKIT_URL) and STORYKIT_API_KEY it works
    against that server with that key's role; without, on the local data directory as
    an agent named mcp:<your OS user>, which can propose but never approve. Stdout is
    the protocol's; messages go to stderr. Needs the mcp extra (storykit[mcp]).

    \b
    Tools: check_diff, submit_suggestion, get_suggestion, wait_for_review,
    revise_suggestion, list_my_suggestions, list_revisions. See docs/agents.md.

    \b
    Examples:
      storykit mcp
      STORYKIT_URL=http://127.0.0.1:8001 STORYKIT_API_KEY=… storykit mcp
    """
    import anyio

    from storykit_cli.errors import Failure

    try:
        from storykit_mcp import stdio
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in ("mcp", "mcp_types", "storykit_mcp"):
            raise
        raise Failure(
            "storykit mcp needs the MCP SDK", hint="pip install 'storykit[mcp]'"
        ) from None
    connection = g.connection
    if connection.url:
        url = connection.url
        if not connection.key:
            raise Failure(
                "no API key for --url",
                hint="set STORYKIT_API_KEY (or pass --key) to an agent key of that server",
            )
        key = connection.key
        anyio.run(lambda: stdio.serve_remote(url, key))
    else:
        from storykit.settings import Settings
        from storykit_cli.user import local_user

        settings = Settings.from_env(data_dir=connection.data_dir)
        anyio.run(lambda: stdio.serve_local(settings, local_user()))
