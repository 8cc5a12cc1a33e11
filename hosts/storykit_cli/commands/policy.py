"""``storykit policy …``: read, replace and try out the policy document."""

from __future__ import annotations

import click

from storykit_cli.context import Globals, json_option, output, pass_globals, read_text, run

__all__ = ["policy"]

_FILE = click.Path(exists=True, dir_okay=False, allow_dash=True)


@click.group()
def policy() -> None:
    """Policies: what screens every suggestion before a person sees it.

    \b
    Examples:
      storykit policy show
      storykit policy show --json > policies.json
      storykit policy set policies.json
      git diff | storykit policy check -
    """


@policy.command()
@json_option
@pass_globals
def show(g: Globals, as_json: bool) -> None:
    """Show the effective policy document and its version.

    `--json` prints {"version", "policies"}; edit "policies" and pass that object
    to `storykit policy set`.

    \b
    Examples:
      storykit policy show
      storykit policy show --json | jq .policies > policies.json
    """
    from storykit_cli import render

    output(run(g, lambda c: c.get_policies()), as_json, render.policies)


@policy.command("set")
@click.argument("file", type=_FILE, metavar="(FILE | -)")
@json_option
@pass_globals
def set_(g: Globals, file: str, as_json: bool) -> None:
    """Replace the policy document with the JSON object in FILE (admin only).

    The object maps each policy's name to its settings. Every section is checked
    before anything is saved; a bad one changes nothing.

    \b
    Examples:
      storykit policy set policies.json
      echo '{"paths": {"allow": ["src/**"]}}' | storykit policy set -
    """
    import json

    from storykit_cli import render
    from storykit_cli.errors import Failure

    text = read_text(file)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise Failure(
            f"{file} is not valid JSON: {exc}", hint="fix the file and try again"
        ) from None
    if not isinstance(document, dict):
        raise Failure(
            f"{file} must hold a JSON object of policy name → settings",
            hint="see `storykit policy show --json` for the shape",
        )
    data = run(g, lambda c: c.set_policies(document))
    output(data, as_json, lambda d: "policies updated\n" + render.policies(d))


@policy.command()
@click.argument("file", type=_FILE, metavar="(FILE | -)")
@click.option("--title", "-t", default="", help="The title to judge along with the diff.")
@click.option("--rationale", "-r", default="", help="The rationale to judge too.")
@click.option(
    "--base-ref",
    "base_ref",
    default="HEAD",
    show_default=True,
    help="The commit the diff applies to.",
)
@json_option
@pass_globals
def check(g: Globals, file: str, title: str, rationale: str, base_ref: str, as_json: bool) -> None:
    """Judge a diff against the current policies without storing anything.

    Exits with 1 when the policies would block it (deny), 0 otherwise.

    \b
    Examples:
      storykit policy check fix.diff
      git diff | storykit policy check - && echo "would pass"
    """
    from storykit_cli import render
    from storykit_cli.errors import USER_ERROR

    diff = read_text(file)
    data = run(
        g, lambda c: c.check_diff(diff=diff, title=title, rationale=rationale, base_ref=base_ref)
    )
    output(data, as_json, render.decision)
    if data.get("outcome") == "deny":
        raise click.exceptions.Exit(USER_ERROR)
