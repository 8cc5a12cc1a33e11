"""The ``storykit-watchdog`` command line: ``run`` (the default), ``status`` and ``stop``."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from storykit_watchdog import __version__
from storykit_watchdog.status import Paths, format_status, pid_alive, read_status

__all__ = ["cli", "main"]

EXIT_OK = 0
EXIT_GAVE_UP = 1
EXIT_ALREADY_RUNNING = 2
EXIT_NOT_RUNNING = 3

_EXAMPLES = """
\b
Examples:
  # supervise the server on a fixed port (the port to probe is read from the command)
  storykit-watchdog -- storykit serve --host 127.0.0.1 --port 8001
\b
  # the default command: python -m storykit_cli serve --data-dir DATA_DIR
  storykit-watchdog --data-dir ~/.local/share/storykit/demo
\b
  # stop with the editor that started it, give up after 5 failures in 2 minutes
  storykit-watchdog --parent-pid 4242 --max-failures 5 --failure-window 120 -- storykit serve
\b
  storykit-watchdog status --json
  storykit-watchdog stop
"""


class _DefaultToRun(click.Group):
    """``storykit-watchdog [OPTIONS] -- CMD`` means ``storykit-watchdog run [OPTIONS] -- CMD``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        passthrough = {*ctx.help_option_names, "--version"}
        if not args or (args[0] not in self.commands and args[0] not in passthrough):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _resolve_data_dir(value: str | None) -> Path:
    if value:
        return Path(value).expanduser().resolve()
    if os.environ.get("STORYKIT_DATA_DIR"):
        return Path(os.environ["STORYKIT_DATA_DIR"]).expanduser().resolve()
    from storykit.paths import resolve_data_dir  # only when needed: keeps start-up light

    return resolve_data_dir()


_data_dir_option = click.option(
    "--data-dir",
    metavar="DIR",
    help="storykit's data directory. Default: $STORYKIT_DATA_DIR, else the per-repository "
    "folder storykit itself uses.",
)


@click.group(cls=_DefaultToRun, epilog=_EXAMPLES)
@click.version_option(__version__, prog_name="storykit-watchdog")
def cli() -> None:
    """Keep the storykit server running: restart it when it exits or stops answering
    GET /health, with exponential backoff; stop it cleanly on request.

    With no subcommand, runs the watchdog (see `storykit-watchdog run --help` for options).
    """


@cli.command(
    epilog=_EXAMPLES,
    context_settings={"allow_interspersed_args": False, "show_default": True},
)
@_data_dir_option
@click.option(
    "--health-url",
    metavar="URL",
    help="URL to probe. Default: /health on the "
    "port found in the command (--port/-p/--host/--bind) or in DATA_DIR/server.json.",
)
@click.option("--no-probe", is_flag=True, help="No health probe: restart only when it exits.")
@click.option(
    "--probe-interval", type=click.FloatRange(min=0.01), default=5.0, help="Seconds between probes."
)
@click.option(
    "--probe-timeout",
    type=click.FloatRange(min=0.01),
    default=2.0,
    help="Seconds a probe may take.",
)
@click.option(
    "--probe-failures",
    type=click.IntRange(min=1),
    default=3,
    help="Restart after this many failed probes in a row.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    help="Start-up seconds in which failed probes do not count.",
)
@click.option(
    "--backoff-initial",
    type=click.FloatRange(min=0),
    default=1.0,
    help="First restart delay, seconds.",
)
@click.option(
    "--backoff-factor",
    type=click.FloatRange(min=1),
    default=2.0,
    help="Each failure multiplies the delay by this.",
)
@click.option(
    "--backoff-max",
    type=click.FloatRange(min=0),
    default=60.0,
    help="Longest restart delay, seconds.",
)
@click.option(
    "--stable-after",
    type=click.FloatRange(min=0),
    default=30.0,
    help="Seconds of healthy uptime after which the delay resets.",
)
@click.option(
    "--max-failures",
    type=click.IntRange(min=1),
    default=None,
    help="Give up (exit 1) after this many failures within --failure-window. [default: never]",
)
@click.option(
    "--failure-window",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    help="Seconds over which --max-failures counts.",
)
@click.option(
    "--kill-timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    help="Seconds between SIGTERM and SIGKILL when stopping the server.",
)
@click.option(
    "--parent-pid",
    type=int,
    default=None,
    help="Stop when this process exits (e.g. the editor that started the watchdog).",
)
@click.option(
    "--log-max-bytes",
    type=click.IntRange(min=0),
    default=5 * 1024 * 1024,
    help="Rotate DATA_DIR/watchdog/server.log at this size (0: never).",
)
@click.option(
    "--log-backups", type=click.IntRange(min=0), default=3, help="Rotated server logs to keep."
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(command: tuple[str, ...], data_dir: str | None, **options: Any) -> None:
    """Run COMMAND (given after --) and keep it running.

    Default COMMAND: python -m storykit_cli serve --data-dir DATA_DIR.
    Exit codes: 0 stopped on request, 1 gave up, 2 another watchdog holds DATA_DIR.
    """
    if command and command[0] in cli.commands:
        raise click.UsageError(f"put {command[0]!r} first: storykit-watchdog {command[0]} ...")
    directory = _resolve_data_dir(data_dir)
    if not command:
        command = (sys.executable, "-m", "storykit_cli", "serve", "--data-dir", str(directory))
    sys.exit(_run(command, directory, options))


def _run(command: tuple[str, ...], data_dir: Path, o: dict[str, Any]) -> int:
    import logging

    from storykit_watchdog.backoff import BackoffPolicy
    from storykit_watchdog.lock import InstanceLock
    from storykit_watchdog.logs import JsonFormatter, logger
    from storykit_watchdog.supervisor import Config, Supervisor

    try:
        config = Config(
            command=command,
            data_dir=data_dir,
            health_url=o["health_url"],
            probe=not o["no_probe"],
            probe_interval=o["probe_interval"],
            probe_timeout=o["probe_timeout"],
            probe_failures=o["probe_failures"],
            grace=o["grace"],
            backoff=BackoffPolicy(
                initial=o["backoff_initial"], factor=o["backoff_factor"], maximum=o["backoff_max"]
            ),
            stable_after=o["stable_after"],
            max_failures=o["max_failures"],
            failure_window=o["failure_window"],
            kill_timeout=o["kill_timeout"],
            parent_pid=o["parent_pid"],
            log_max_bytes=o["log_max_bytes"],
            log_backups=o["log_backups"],
        )
        supervisor = Supervisor(config)
    except ValueError as exc:  # e.g. a --health-url that is not http(s)
        raise click.UsageError(str(exc)) from exc

    paths = Paths(data_dir=data_dir)
    paths.dir.mkdir(parents=True, exist_ok=True)
    lock = InstanceLock(paths.lock)
    if not lock.acquire():
        holder = lock.holder() or (read_status(paths.status) or {}).get("watchdog_pid")
        click.echo(
            f"storykit-watchdog: already running for {data_dir} "
            f"(pid {holder or 'unknown'} holds {paths.lock})",
            err=True,
        )
        return EXIT_ALREADY_RUNNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        return supervisor.run()
    finally:
        lock.release()


def _watchdog_alive(data: dict[str, Any] | None) -> bool:
    pid = (data or {}).get("watchdog_pid")
    return isinstance(pid, int) and pid_alive(pid)


@cli.command()
@_data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the status file as JSON.")
def status(data_dir: str | None, as_json: bool) -> None:
    """Print the watchdog's status. Exit 0 if the server is running, 3 if not (or no status)."""
    paths = Paths(data_dir=_resolve_data_dir(data_dir))
    data = read_status(paths.status)
    if data is None:
        click.echo(f"storykit-watchdog: no status at {paths.status} (not running)", err=True)
        sys.exit(EXIT_NOT_RUNNING)
    alive = _watchdog_alive(data)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(format_status(data, watchdog_alive=alive))
    sys.exit(EXIT_OK if alive and data.get("state") == "running" else EXIT_NOT_RUNNING)


@cli.command(short_help="Stop the watchdog and its server.")
@_data_dir_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the watchdog to report 'stopped'.",
)
def stop(data_dir: str | None, timeout: float) -> None:
    """Ask the watchdog to stop the server and exit (by creating DATA_DIR/watchdog/stop),
    and wait until it has. Exit 0 once stopped (or if it was not running), 1 on timeout."""
    paths = Paths(data_dir=_resolve_data_dir(data_dir))
    data = read_status(paths.status)
    if not _watchdog_alive(data) or (data or {}).get("state") in ("stopped", "failed"):
        click.echo("storykit-watchdog: not running")
        sys.exit(EXIT_OK)
    paths.stop.touch()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = read_status(paths.status)
        if (data or {}).get("state") in ("stopped", "failed") or not _watchdog_alive(data):
            click.echo("storykit-watchdog: stopped")
            sys.exit(EXIT_OK)
        time.sleep(0.1)
    click.echo(f"storykit-watchdog: did not stop within {timeout:g} s", err=True)
    sys.exit(1)


def main() -> None:
    cli(prog_name="storykit-watchdog")
