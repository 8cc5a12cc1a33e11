"""How the CLI fails: one readable line on stderr and an exit code that says what kind.

Everything the core raises on purpose (:class:`storykit.errors.StorykitError`, and the
same errors read back from a server's problem+json) becomes one ``error: …`` line
with, where it helps, what to do next. Only ``--debug`` shows a traceback.
"""

from __future__ import annotations

import dataclasses
from typing import IO, Any

import click

__all__ = [
    "CONNECTION",
    "EXIT_CODES",
    "INTERNAL",
    "INTERRUPTED",
    "OK",
    "SERVER",
    "USAGE",
    "USER_ERROR",
    "ConnectionFailed",
    "Failure",
    "failure_for",
    "redact",
    "redacted",
    "unwrap",
]

OK = 0
USER_ERROR = 1
USAGE = 2
CONNECTION = 3
SERVER = 4
INTERNAL = 5
INTERRUPTED = 130


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ExitCode:
    code: int
    meaning: str


#: The documented table (docs/cli.md is generated from it).
EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(code=OK, meaning="success"),
    ExitCode(
        code=USER_ERROR,
        meaning="the request was refused (a 4xx: invalid input, unknown id, conflict, missing"
        " role, bad key, rate limited), a file could not be read or parsed, or"
        " `policy check` found a deny",
    ),
    ExitCode(code=USAGE, meaning="usage error: unknown option, missing argument, missing file"),
    ExitCode(code=CONNECTION, meaning="cannot reach the server given with `--url`"),
    ExitCode(
        code=SERVER,
        meaning="storykit, a plugin or a backend failed, or a feature is not configured (a 5xx)",
    ),
    ExitCode(code=INTERNAL, meaning="a bug in storykit: rerun with `--debug` and report it"),
    ExitCode(code=INTERRUPTED, meaning="interrupted (Ctrl-C)"),
)

# What to do next, by HTTP status, when the detail itself does not say.
_HINTS = {
    401: "check --key or STORYKIT_API_KEY",
    403: "use a key with the role this needs (see `storykit keys new --help`)",
    404: "check the id (`storykit suggest list`, `storykit plan list`)",
    412: "read it again (`storykit policy show --json`), redo your edit and set it again",
    413: "the body is larger than the server's MAX_BODY_BYTES",
}
# A 403 can also be a rule that no role lifts (your own proposal): its detail says what
# to do, so the role hint is only added where the detail is about the role.
_ROLE_REFUSAL = "this needs the "


class Failure(click.ClickException):
    """A failure already worded for people: shown as ``error: … ; hint``."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = USER_ERROR):
        super().__init__(" ".join(message.split()))
        self.hint = hint
        # click declares exit_code a class variable; this one varies per failure.
        setattr(self, "exit_code", exit_code)  # noqa: B010

    def format_message(self) -> str:
        return self.message + (f"; {self.hint}" if self.hint else "")

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=file is None)


class ConnectionFailed(Exception):
    """The server given with ``--url`` cannot be reached (refused, DNS, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


def unwrap(exc: BaseException) -> BaseException:
    """The error that matters inside the exception groups anyio's task groups raise."""
    while isinstance(exc, BaseExceptionGroup):
        inner = [e for e in exc.exceptions if not _is_cancellation(e)] or list(exc.exceptions)
        exc = inner[0]
    return exc


def _is_cancellation(exc: BaseException) -> bool:
    return type(exc).__name__ in {"CancelledError", "Cancelled"}


def failure_for(exc: BaseException) -> Failure:
    """Word any exception for people; unknown ones are bugs (exit 5)."""
    from storykit.errors import StorykitError  # only on the error path

    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, StorykitError):
        status = int(exc.status)
        hint = _HINTS.get(status)
        if status == 403 and not exc.detail.startswith(_ROLE_REFUSAL):
            hint = None
        retry_after = getattr(exc, "retry_after", None)  # RateLimited, local or remote
        if isinstance(retry_after, int | float):
            hint = f"wait {retry_after:g}s and try again"
        code = USER_ERROR if 400 <= status < 500 else SERVER
        return Failure(exc.detail, hint=hint, exit_code=code)
    if isinstance(exc, ConnectionFailed):
        return Failure(
            str(exc),
            hint="is the server running? Start it with `storykit serve`, or check --url",
            exit_code=CONNECTION,
        )
    return Failure(
        f"internal error: {type(exc).__name__}: {exc}",
        hint="rerun with --debug for the traceback and report it",
        exit_code=INTERNAL,
    )


def redact(text: str, key: object) -> str:
    """``text`` with the API key (as is, or as a str or bytes repr) replaced by ``***``.

    A last line of defence: no message or traceback the CLI prints may hold the key.
    """
    if not isinstance(key, str) or not key.strip():
        return text
    key = key.strip()
    forms = {key, repr(key)[1:-1], repr(key.encode(errors="backslashreplace"))[2:-1]}
    for form in sorted((f for f in forms if len(f) >= 4), key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def redacted(failure: Failure, key: object) -> Failure:
    """``failure`` with the key taken out of its message and hint."""
    message = redact(failure.message, key)
    hint = None if failure.hint is None else redact(failure.hint, key)
    if message == failure.message and hint == failure.hint:
        return failure
    return Failure(message, hint=hint, exit_code=failure.exit_code)
