"""What every command shares: the global options, running a use case, printing.

A command builds one call on the :class:`~storykit_cli.transport.Client` and hands it
to :func:`run`, which picks the mode, runs it on an event loop and returns the
JSON; :func:`output` prints it for people or, with ``--json``, as is.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from storykit_cli.client import Connection
from storykit_cli.transport import JSON, Client

__all__ = [
    "Globals",
    "json_option",
    "notice",
    "output",
    "page_options",
    "pass_globals",
    "quiet_option",
    "read_text",
    "run",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Globals:
    connection: Connection
    debug: bool = False


pass_globals = click.make_pass_decorator(Globals, ensure=False)


def notice(message: str) -> None:
    click.echo(f"storykit: {message}", err=True)


def _tracing() -> bool:
    import os

    return os.environ.get("STORYKIT_TRACE_HOOKS", "").strip().lower() in {"1", "true", "yes", "on"}


def run(g: Globals, call: Callable[[Client], Awaitable[T]]) -> T:
    """Open the client the global options choose and await ``call(client)`` on it."""
    import logging

    import anyio

    from storykit_cli.client import connect

    if g.debug:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    trace = logging.getLogger("storykit.plugins")
    handler: logging.Handler | None = None
    if not g.debug and _tracing():
        # STORYKIT_TRACE_HOOKS: each hook call on stderr (plugin, hook, time), as the server logs.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("storykit: %(message)s"))
        trace.addHandler(handler)
        trace.setLevel(logging.INFO)
    else:
        # Plugin failures are logged as warnings; the CLI reports them in its own
        # output, so keep Python's last-resort handler from printing them again.
        quiet = logging.getLogger("storykit")
        if not any(isinstance(h, logging.NullHandler) for h in quiet.handlers):
            quiet.addHandler(logging.NullHandler())

    async def main() -> T:
        async with connect(g.connection) as client:
            return await call(client)

    try:
        return anyio.run(main)
    finally:
        if handler is not None:
            trace.removeHandler(handler)
            trace.setLevel(logging.NOTSET)


def output(data: JSON, as_json: bool, human: Callable[[JSON], str]) -> None:
    from storykit_cli import render

    click.echo(render.as_json(data) if as_json else human(data))


def quiet_option(fn: F) -> F:
    return click.option(
        "--quiet", "-q", is_flag=True, help="Print only the new id (for scripts: ID=$(…))."
    )(fn)


def page_options(things: str, thing: str) -> Callable[[F], F]:
    """``--limit`` and ``--after``: which keyset page of a list of ``things`` to show."""

    def decorate(fn: F) -> F:
        fn = click.option(
            "--after", metavar="ID", help=f"Start after this {thing} (the next page)."
        )(fn)
        return click.option(
            "--limit",
            type=click.IntRange(1, 200),
            default=50,
            show_default=True,
            metavar="N",
            help=f"At most this many {things}.",
        )(fn)

    return decorate


def json_option(fn: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the API's JSON instead of text."
    )(fn)


def read_text(path: str) -> str:
    """A file's text, or stdin's for ``-``; an unreadable file is one clear error."""
    from storykit_cli.errors import Failure

    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Failure(f"{path} is not UTF-8 text", hint="pass a text file") from None
    except OSError as exc:
        raise Failure(f"cannot read {path}: {exc.strerror or exc}") from None
