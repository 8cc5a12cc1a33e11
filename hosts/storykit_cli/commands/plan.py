"""``storykit plan …`` and ``storykit pr``: from approved suggestions to a branch or PR."""

from __future__ import annotations

import click

from storykit_cli.context import (
    Globals,
    json_option,
    output,
    page_options,
    pass_globals,
    quiet_option,
    run,
)

__all__ = ["plan", "pr"]


@click.group()
def plan() -> None:
    """Plans: a goal plus approved suggestions, as variants to choose from.

    \b
    Examples:
      storykit plan create --goal "Tidy imports"      from every approved suggestion
      storykit plan show plan_01J…
      storykit plan select plan_01J… all
      storykit pr plan_01J…                           dry run of the selected variant
    """


@plan.command()
@click.option("--goal", "-g", required=True, help="What the change as a whole is for.")
@click.option(
    "--suggestion",
    "suggestion_ids",
    multiple=True,
    metavar="ID",
    help="Use this approved suggestion (repeatable) [default: every approved one].",
)
@json_option
@quiet_option
@pass_globals
def create(
    g: Globals, goal: str, suggestion_ids: tuple[str, ...], as_json: bool, quiet: bool
) -> None:
    """Make a plan: the planners turn the suggestions into variants.

    \b
    Examples:
      storykit plan create --goal "Lint fixes for the release"
      storykit plan create -g "Fix the parser" --suggestion sug_01J… --suggestion sug_01K…
      PLAN=$(storykit plan create -g "Fix the README" -q)
    """
    from storykit_cli import render

    ids = list(suggestion_ids) if suggestion_ids else None
    data = run(g, lambda c: c.plan(goal=goal, suggestion_ids=ids))
    output(data, as_json, (lambda d: str(d["id"])) if quiet else render.plan_detail)


@plan.command("list")
@page_options("plans", "plan")
@json_option
@pass_globals
def list_(g: Globals, limit: int, after: str | None, as_json: bool) -> None:
    """List plans, newest first.

    \b
    Examples:
      storykit plan list
      storykit plan list --json | jq -r '.items[0].id'
    """
    from storykit_cli import render

    output(run(g, lambda c: c.list_plans(after=after, limit=limit)), as_json, render.plan_table)


@plan.command()
@click.argument("plan_id", metavar="ID")
@click.option(
    "--diff/--no-diff",
    "show_diff",
    default=False,
    show_default=True,
    help="Show each variant's combined diff.",
)
@json_option
@pass_globals
def show(g: Globals, plan_id: str, show_diff: bool, as_json: bool) -> None:
    """Show a plan, its variants and which one is selected.

    \b
    Examples:
      storykit plan show plan_01J…
      storykit plan show plan_01J… --diff
    """
    from storykit_cli import render

    data = run(g, lambda c: c.get_plan(plan_id))
    output(data, as_json, lambda p: render.plan_detail(p, show_diff=show_diff))


@plan.command()
@click.argument("plan_id", metavar="ID")
@click.argument("variant")
@json_option
@pass_globals
def select(g: Globals, plan_id: str, variant: str, as_json: bool) -> None:
    """Choose the VARIANT of a plan that `storykit pr` will use.

    \b
    Examples:
      storykit plan select plan_01J… all
    """
    from storykit_cli import render

    data = run(g, lambda c: c.select(plan_id, variant=variant))
    output(data, as_json, render.plan_detail)


@click.command()
@click.argument("plan_id", metavar="PLAN_ID")
@click.option("--variant", "-v", metavar="KEY", help="[default: the plan's selected variant]")
@click.option(
    "--dry-run/--no-dry-run",
    default=True,
    show_default=True,
    help="Only say what would be done. --no-dry-run uses the PR_BACKEND setting"
    " (git, github or gitlab; refused while it is dry-run).",
)
@click.option(
    "--branch",
    "-b",
    metavar="NAME",
    help="The branch to create, used exactly (refused if it exists)"
    " [default: storykit/<plan>-<variant>, with -2, -3, … added when that is taken].",
)
@json_option
@pass_globals
def pr(
    g: Globals,
    plan_id: str,
    variant: str | None,
    dry_run: bool,
    branch: str | None,
    as_json: bool,
) -> None:
    """Turn a plan's variant into a branch or pull request (a dry run by default).

    A dry run prints the branch name and the exact diff it would commit, and
    changes nothing; it fails, as the real run would, when the diff does not
    apply to its base. Your working tree is never touched either way.

    \b
    Examples:
      storykit pr plan_01J…
      storykit pr plan_01J… --variant low-risk
      storykit pr plan_01J… --branch fix/tidy-imports
      PR_BACKEND=git storykit pr plan_01J… --no-dry-run
    """
    from storykit_cli import render

    data = run(g, lambda c: c.open_pr(plan_id, variant=variant, dry_run=dry_run, branch=branch))
    output(data, as_json, render.pr_result)
