"""``storykit suggest review | approve | reject | revisions | interdiff``: decisions, one or
many, and what changed between revisions (registered on the ``suggest`` group)."""

from __future__ import annotations

import json
import re
from typing import Any

import click

from storykit_cli.context import Globals, json_option, output, pass_globals, read_text, run

__all__ = ["approve", "interdiff", "line_comment", "reject", "review", "revisions"]

_LINE_COMMENT = re.compile(
    r"(?P<file>[^\s=:][^=]*?):(?P<line>[0-9]+)(?::(?P<side>old|new))?=(?P<body>.+)", re.S
)
_FILTER_KEYS = ("status", "source", "agent", "risk")  # storykit.filters.KEYS (a test checks)


def line_comment(value: str) -> dict[str, Any] | None:
    """``FILE:LINE[:old|new]=TEXT`` as a line comment, or None when ``value`` is an overall
    comment (anything else)."""
    m = _LINE_COMMENT.fullmatch(value)
    if m is None or not m["body"].strip():
        return None
    return {
        "file": m["file"],
        "line": int(m["line"]),
        "side": m["side"] or "new",
        "body": m["body"],
    }


def _comments_file(path: str) -> list[dict[str, Any]]:
    from storykit_cli.errors import Failure

    try:
        data = json.loads(read_text(path))
    except ValueError as exc:
        raise Failure(f"{path} is not JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("comments"), list):
        data = data["comments"]
    if not isinstance(data, list):
        raise Failure(
            f"{path} must hold a list of line comments",
            hint='[{"file": "src/a.py", "line": 12, "side": "new", "body": "…"}]',
        )
    return data


@click.command()
@click.argument("suggestion_id", metavar="ID")
@click.option("--approve", is_flag=True, help="Approve the current diff.")
@click.option("--revise", is_flag=True, help="Ask for a revision (needs a comment).")
@click.option("--reject", is_flag=True, help="Reject it.")
@click.option(
    "--comment",
    "-m",
    "given",
    multiple=True,
    metavar="TEXT | FILE:LINE[:old|new]=TEXT",
    help="Say why, or what to change. FILE:LINE=TEXT comments on that line of the diff (the"
    " new side; add :old for a removed line). Repeatable: one overall comment, any number"
    " of line comments.",
)
@click.option(
    "--comments",
    "comments_path",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    metavar="FILE.json",
    help='Line comments from a JSON file: [{"file", "line", "side", "body"}, …].',
)
@json_option
@pass_globals
def review(
    g: Globals,
    suggestion_id: str,
    approve: bool,
    revise: bool,
    reject: bool,
    given: tuple[str, ...],
    comments_path: str | None,
    as_json: bool,
) -> None:
    """Approve, ask for a revision, or reject a suggestion.

    Nobody can approve a suggestion they proposed, and blocked suggestions cannot
    be approved. Line comments must be on lines the diff shows on that side.

    \b
    Examples:
      storykit suggest review sug_01J… --approve
      storykit suggest review sug_01J… --revise -m "keep the public name"
      storykit suggest review sug_01J… --revise -m "src/a.py:12=call it parse_all"
      storykit suggest review sug_01J… --revise -m "src/a.py:7:old=keep this line" -m "see notes"
      storykit suggest review sug_01J… --revise --comments notes.json
      storykit suggest review sug_01J… --reject -m "not wanted"
    """
    from storykit_cli import render

    chosen = [
        name for name, on in (("approve", approve), ("revise", revise), ("reject", reject)) if on
    ]
    if not chosen:
        raise click.UsageError("say what to do: --approve, --revise or --reject")
    if len(chosen) > 1:
        raise click.UsageError(
            f"give only one of --approve, --revise or --reject (got --{' and --'.join(chosen)})"
        )
    action = chosen[0]
    notes = [c for c in (line_comment(v) for v in given) if c is not None]
    overall = [v for v in given if line_comment(v) is None]
    if len(overall) > 1:
        raise click.UsageError(
            "give one overall comment (more -m values must be FILE:LINE[:old|new]=TEXT)"
        )
    comment = overall[0] if overall else ""
    if comments_path is not None:
        notes += _comments_file(comments_path)
    if action == "revise" and not comment.strip() and not notes:
        raise click.UsageError('--revise needs -m "what to change" (or a line comment)')
    data = run(g, lambda c: c.review(suggestion_id, action=action, comment=comment, comments=notes))
    output(data, as_json, render.suggestion_summary)


def _bulk(action: str) -> click.Command:
    past = {"approve": "approved", "reject": "rejected"}[action]

    @click.command(name=action)
    @click.argument("ids", nargs=-1, metavar="[ID]...")
    @click.option(
        "--filter",
        "filters",
        multiple=True,
        metavar="KEY=VALUE",
        help=f"Instead of IDs: every suggestion matching ({', '.join(_FILTER_KEYS)};"
        " repeatable, all must match), newest first, at most --limit.",
    )
    @click.option("--comment", "-m", default="", help="One comment for every decision.")
    @click.option(
        "--limit",
        type=click.IntRange(1, 200),
        default=200,
        show_default=True,
        help="With --filter: at most this many.",
    )
    @json_option
    @pass_globals
    def command(
        g: Globals,
        ids: tuple[str, ...],
        filters: tuple[str, ...],
        comment: str,
        limit: int,
        as_json: bool,
    ) -> None:
        from storykit.filters import SuggestionFilter
        from storykit_cli import render
        from storykit_cli.errors import USER_ERROR

        if bool(ids) == bool(filters):
            raise click.UsageError("give suggestion IDs or --filter KEY=VALUE (one of them)")
        where = None
        if filters:
            values: dict[str, str] = {}
            for item in filters:
                key, sep, value = item.partition("=")
                if not sep or key not in _FILTER_KEYS:
                    keys = ", ".join(_FILTER_KEYS)
                    raise click.UsageError(f"--filter {item!r}: use KEY=VALUE, KEY one of {keys}")
                values[key] = value
            where = SuggestionFilter.parse(values)
        reply = run(
            g,
            lambda c: c.review_many(
                action=action,
                comment=comment,
                ids=list(ids) or None,
                where=where,
                limit=limit,
            ),
        )
        output(reply, as_json, lambda r: render.bulk_result(r, past))
        if reply.get("refused"):
            raise click.exceptions.Exit(USER_ERROR)

    command.help = (
        f"{action.capitalize()} several suggestions at once: the IDs given, or those --filter"
        f" matches.\n\nEach is decided on its own, with its own event; one line per"
        f" suggestion says {past} or why it was refused (your own proposal, blocked by policy,"
        f" not found). Exits with 1 if any was refused.\n\n\b\nExamples:\n"
        f"  storykit suggest {action} sug_01J… sug_01K…\n"
        f"  storykit suggest {action} --filter status=pending --filter source=ruff"
        f' -m "batch"\n'
    )
    return command


approve = _bulk("approve")
reject = _bulk("reject")


@click.command()
@click.argument("suggestion_id", metavar="ID")
@click.argument("number", type=click.IntRange(min=1), required=False, metavar="[N]")
@json_option
@pass_globals
def revisions(g: Globals, suggestion_id: str, number: int | None, as_json: bool) -> None:
    """List a suggestion's revisions, oldest first; with N, show revision N and its diff.

    \b
    Examples:
      storykit suggest revisions sug_01J…
      storykit suggest revisions sug_01J… 1 --json | jq -r .diff
    """
    from storykit_cli import render

    if number is None:
        output(run(g, lambda c: c.list_revisions(suggestion_id)), as_json, render.revision_table)
    else:
        data = run(g, lambda c: c.get_revision(suggestion_id, number))
        output(data, as_json, render.revision_detail)


@click.command()
@click.argument("suggestion_id", metavar="ID")
@click.option(
    "--from",
    "start",
    type=click.IntRange(min=1),
    default=None,
    help="The earlier revision [default: the one before --to].",
)
@click.option(
    "--to",
    "end",
    type=click.IntRange(min=1),
    default=None,
    help="The later revision [default: the current one].",
)
@json_option
@pass_globals
def interdiff(
    g: Globals, suggestion_id: str, start: int | None, end: int | None, as_json: bool
) -> None:
    """Show what changed between two revisions: the diff between the files each produces.

    \b
    Examples:
      storykit suggest interdiff sug_01J…              the last revision's changes
      storykit suggest interdiff sug_01J… --from 1     everything since revision 1
    """
    from storykit_cli import render

    data = run(g, lambda c: c.interdiff(suggestion_id, start=start, end=end))
    output(data, as_json, render.interdiff)
