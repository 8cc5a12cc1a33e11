"""``storykit suggest …``: generate, list, show, submit, revise, refine; the decisions and
revisions are in :mod:`storykit_cli.commands.decide`."""

from __future__ import annotations

import click

from storykit_cli.commands import decide
from storykit_cli.context import (
    Globals,
    json_option,
    output,
    page_options,
    pass_globals,
    quiet_option,
    read_text,
    run,
)

__all__ = ["RISKS", "STATUSES", "suggest"]

# The core's Status and Risk values; kept here so `--help` need not import the core
# (a test checks they match).
STATUSES = ("pending", "approved", "revision_requested", "rejected", "blocked", "superseded")
RISKS = ("low", "medium", "high", "unknown")


@click.group()
def suggest() -> None:
    """Suggestions: proposed diffs, screened by policy, waiting for review.

    \b
    Examples:
      storykit suggest generate                 run every source over the repository
      storykit suggest list --status pending
      storykit suggest show sug_01J…
      storykit suggest review sug_01J… --approve
      storykit suggest approve --filter status=pending --filter source=ruff
      storykit suggest interdiff sug_01J…
    """


@suggest.command()
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME",
    help="Run only this source (repeatable) [default: all].",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress on stderr [default: only on a terminal].",
)
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@json_option
@pass_globals
def generate(
    g: Globals,
    sources: tuple[str, ...],
    progress: bool | None,
    paths: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run suggestion sources over the repository, or only over PATHs.

    PATHs are relative to the repository (REPO_PATH). Progress is shown on stderr
    while the sources work. Exits with 4 if a source failed (its error is listed).

    \b
    Examples:
      storykit suggest generate
      storykit suggest generate --source ruff src/app.py src/util.py
      storykit suggest generate --json | jq '.items[].id'
    """
    from storykit_cli import render, watch
    from storykit_cli.errors import SERVER
    from storykit_cli.progress import StatusLine

    status = StatusLine.for_stderr(progress)
    try:
        result = run(
            g,
            lambda c: watch.generate(
                c,
                sources=list(sources) or None,
                paths=list(paths),
                on_progress=status.update if status else None,
                on_notice=g.connection.on_notice,
            ),
        )
    finally:
        if status:
            status.close()
    output(result, as_json, render.generate_result)
    errors = result.get("errors") or []
    for message in errors:
        click.echo(f"error: {message}", err=True)
    if errors:
        raise click.exceptions.Exit(SERVER)


@suggest.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@click.option("--source", metavar="NAME", help="Only from this source (e.g. ruff, api).")
@click.option("--agent", metavar="NAME", help="Only proposed by this agent (key name).")
@click.option("--risk", type=click.Choice(RISKS), help="Only this risk.")
@page_options("suggestions", "suggestion")
@json_option
@pass_globals
def list_(g: Globals, /, limit: int, after: str | None, as_json: bool, **where: str | None) -> None:
    """List suggestions, newest first.

    \b
    Examples:
      storykit suggest list
      storykit suggest list --status pending --risk high
      storykit suggest list --source api --agent ci-bot --limit 10
      storykit suggest list --after sug_01J…    the next page
    """
    from storykit.filters import SuggestionFilter
    from storykit_cli import render

    # The options are the filter's keys: one parse, whichever mode runs it.
    parsed = SuggestionFilter.parse(where)
    page = run(g, lambda c: c.list_suggestions(parsed, after=after, limit=limit))
    output(page, as_json, render.suggestion_table)


@suggest.command()
@click.argument("suggestion_id", metavar="ID")
@click.option(
    "--diff/--no-diff", "show_diff", default=True, show_default=True, help="Show the diff."
)
@click.option(
    "--sarif",
    is_flag=True,
    help="Print the findings as a SARIF 2.1.0 log (for code scanning and reviewdog).",
)
@json_option
@pass_globals
def show(g: Globals, suggestion_id: str, show_diff: bool, sarif: bool, as_json: bool) -> None:
    """Show one suggestion: its findings, reviews and diff.

    \b
    Examples:
      storykit suggest show sug_01J…
      storykit suggest show sug_01J… --no-diff
      storykit suggest show sug_01J… --json | jq -r .diff | git apply --check
      storykit suggest show sug_01J… --sarif > storykit.sarif
    """
    from storykit_cli import render

    if sarif and as_json:
        raise click.UsageError("--sarif and --json print different things: choose one")
    data = run(g, lambda c: c.get_suggestion(suggestion_id))
    if sarif:
        from storykit.models import Suggestion
        from storykit.sarif import sarif_log

        click.echo(render.as_json(sarif_log(Suggestion.from_dict(data))))
        return
    output(data, as_json, lambda s: render.suggestion_detail(s, show_diff=show_diff))


_DIFF_FILE = click.Path(exists=True, dir_okay=False, allow_dash=True)
_idempotency_option = click.option(
    "--idempotency-key",
    metavar="KEY",
    default=None,
    help="Run this again with the same KEY (a UUID, a CI job id) and it answers what the first"
    " run did, storing nothing new: safe to retry.",
)


@suggest.command()
@click.argument("file", type=_DIFF_FILE, metavar="(FILE | -)")
@click.option("--title", "-t", required=True, help="One line saying what the change does.")
@click.option("--rationale", "-r", default="", help="Why the change is worth making.")
@click.option(
    "--base-ref",
    default="HEAD",
    show_default=True,
    metavar="REF",
    help="The git ref the diff applies to.",
)
@_idempotency_option
@json_option
@quiet_option
@pass_globals
def submit(
    g: Globals,
    file: str,
    title: str,
    rationale: str,
    base_ref: str,
    idempotency_key: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Propose a diff from FILE, or from stdin with -.

    The diff is screened by policy at once: the answer shows its status (pending,
    or blocked with the findings that say why) and risk.

    \b
    Examples:
      storykit suggest submit fix.diff --title "Close the file handle"
      git diff | storykit suggest submit - -t "Tidy imports" -r "ruff I001"
      SUG=$(storykit suggest submit fix.diff -t "Fix a typo" -q)
      storykit suggest submit fix.diff -t "Retry-safe" --idempotency-key "$CI_JOB_ID"
    """
    from storykit_cli import render

    diff = read_text(file)
    data = run(
        g,
        lambda c: c.submit(
            title=title,
            diff=diff,
            rationale=rationale,
            base_ref=base_ref,
            idempotency_key=idempotency_key,
        ),
    )
    output(data, as_json, (lambda d: str(d["id"])) if quiet else render.suggestion_summary)


@suggest.command()
@click.argument("suggestion_id", metavar="ID")
@click.argument("file", type=_DIFF_FILE, metavar="(FILE | -)")
@click.option("--title", "-t", default=None, help="A new title [default: keep it].")
@click.option("--rationale", "-r", default=None, help="A new rationale [default: keep it].")
@_idempotency_option
@json_option
@pass_globals
def revise(
    g: Globals,
    suggestion_id: str,
    file: str,
    title: str | None,
    rationale: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Replace your suggestion's diff with a new version from FILE (or - for stdin).

    Only the proposer can revise; approvals of the earlier diff stop counting.

    \b
    Examples:
      storykit suggest revise sug_01J… fix-v2.diff
      git diff | storykit suggest revise sug_01J… - --rationale "as asked in review"
    """
    from storykit_cli import render

    diff = read_text(file)
    data = run(
        g,
        lambda c: c.revise(
            suggestion_id,
            diff=diff,
            title=title,
            rationale=rationale,
            idempotency_key=idempotency_key,
        ),
    )
    output(data, as_json, render.suggestion_summary)


@suggest.command()
@click.argument("suggestion_id", metavar="ID")
@click.option("--instructions", "-i", default="", help="What the refiner should change.")
@click.option(
    "--refiner", metavar="NAME", default=None, help="Which refiner [default: the first configured]."
)
@json_option
@pass_globals
def refine(
    g: Globals, suggestion_id: str, instructions: str, refiner: str | None, as_json: bool
) -> None:
    """Ask the configured refiner (an LLM) to improve a suggestion.

    The result is a new revision of the same suggestion, screened again.

    \b
    Examples:
      storykit suggest refine sug_01J…
      storykit suggest refine sug_01J… -i "also update the docstring"
    """
    from storykit_cli import render

    data = run(
        g,
        lambda c: c.refine(suggestion_id, instructions=instructions, refiner=refiner),
    )
    output(data, as_json, render.suggestion_summary)


for _command in (decide.review, decide.approve, decide.reject, decide.revisions, decide.interdiff):
    suggest.add_command(_command)
