"""Text for people: tables, summaries and coloured diffs.

Colour comes from ``click.style``; ``click.echo`` drops it when the output is not a
terminal, and ``NO_COLOR`` (https://no-color.org) turns it off everywhere. ``--json``
bypasses all of this and prints the API's JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import click

__all__ = [
    "as_json",
    "bulk_result",
    "decision",
    "diff",
    "event_line",
    "generate_result",
    "interdiff",
    "json_line",
    "plan_detail",
    "plan_table",
    "plugins",
    "policies",
    "pr_result",
    "revision_detail",
    "revision_table",
    "style",
    "suggestion_detail",
    "suggestion_summary",
    "suggestion_table",
    "table",
]

JSON = Mapping[str, Any]

_STATUS_COLOURS = {
    "approved": "green",
    "pending": "yellow",
    "revision_requested": "magenta",
    "rejected": "red",
    "blocked": "red",
    "superseded": "blue",
}
_RISK_COLOURS = {"low": "green", "medium": "yellow", "high": "red"}
_SEVERITY_COLOURS = {"allow": "green", "warn": "yellow", "deny": "red"}


def as_json(data: object) -> str:
    """The API's JSON, keys sorted as the server sends them, so both modes print the same."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def json_line(data: object) -> str:
    """One JSON document per line (``events --follow --json``)."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def style(text: str, **styles: Any) -> str:
    if os.environ.get("NO_COLOR"):
        return text
    return click.style(text, **styles)


def _width() -> int | None:
    """The terminal's width, or None when the output is not a terminal (nothing is clipped:
    a pipe into grep or a file should see whole titles)."""
    if not sys.stdout.isatty():
        return None
    return max(shutil.get_terminal_size((100, 24)).columns, 40)


def _short_time(value: object) -> str:
    text = str(value or "")
    return text[:16].replace("T", " ")


def _clip(text: str, width: int | None) -> str:
    text = " ".join(text.split())
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def diff(text: str) -> str:
    """A unified diff with added lines green, removed red and hunk headers cyan."""
    out = []
    for line in text.splitlines():
        if line.startswith(("diff --git", "+++", "---", "index ", "new file", "deleted file")):
            out.append(style(line, bold=True))
        elif line.startswith("@@"):
            out.append(style(line, fg="cyan"))
        elif line.startswith("+"):
            out.append(style(line, fg="green"))
        elif line.startswith("-"):
            out.append(style(line, fg="red"))
        else:
            out.append(line)
    return "\n".join(out)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, colours: Any = None) -> str:
    """Columns padded to fit; the last column is clipped to the terminal width.

    ``colours(column, value)`` may return click.style keywords for a cell; styling is
    applied after padding so escape codes do not upset the alignment.
    """
    # One line per row; leading spaces stay (they mark the selected variant).
    rows = [[" ".join(str(cell).splitlines()) for cell in row] for row in rows]
    if not rows:
        return ""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    room = _width()
    last: int | None = None
    if room is not None:
        last = max(room - sum(widths[:-1]) - 2 * (len(widths) - 1), 10)
        widths[-1] = min(widths[-1], last)
    heads = [
        h.ljust(w) if i < len(headers) - 1 else h
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    ]
    lines = ["  ".join(style(h, bold=True) for h in heads)]
    for row in rows:
        cells = []
        for i, (cell, w) in enumerate(zip(row, widths, strict=True)):
            text = cell.ljust(w) if i < len(row) - 1 else _clip(cell, last)
            extra = colours(headers[i], cell) if colours else None
            cells.append(style(text, **extra) if extra else text)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


_PR_COLOURS = {"merged": "magenta", "closed": "red", "open": "green"}
_CHECK_COLOURS = {"passing": "green", "failing": "red", "pending": "yellow"}


def _cell_colours(column: str, value: str) -> dict[str, Any] | None:
    if column == "STATE" and value in _PR_COLOURS:
        return {"fg": _PR_COLOURS[value]}
    if column == "CHECKS" and value in _CHECK_COLOURS:
        return {"fg": _CHECK_COLOURS[value]}
    if column == "STATUS" and value in _STATUS_COLOURS:
        return {"fg": _STATUS_COLOURS[value]}
    if column == "RISK" and value in _RISK_COLOURS:
        return {"fg": _RISK_COLOURS[value]}
    if column == "RISK" and value == "unknown":
        return {"dim": True}
    return None


def _status(value: str) -> str:
    return style(value, fg=_STATUS_COLOURS.get(value))


def _risk(value: str) -> str:
    return style(value, fg=_RISK_COLOURS.get(value), dim=value == "unknown")


def _findings(findings: Sequence[JSON], indent: str = "  ") -> list[str]:
    lines = []
    for f in findings:
        severity = str(f.get("severity", "warn"))
        where = f.get("file") or ""
        if where and f.get("line"):
            where = f"{where}:{f['line']}"
        origin = "/".join(str(p) for p in (f.get("policy"), f.get("rule")) if p)
        text = f"{indent}{style(severity, fg=_SEVERITY_COLOURS.get(severity))}  {f.get('message')}"
        details = ", ".join(p for p in (where, origin) if p)
        lines.append(text + (style(f"  ({details})", dim=True) if details else ""))
    return lines


def _next_page(page: JSON, what: str) -> list[str]:
    after = page.get("next_after")
    return [style(f"more {what}: add --after {after}", dim=True)] if after else []


# -- suggestions ----------------------------------------------------------------
def _suggestion_rows(items: Sequence[JSON]) -> list[list[str]]:
    return [
        [
            str(s["id"]),
            str(s["status"]),
            str(s["risk"]),
            str(s.get("source", "")),
            str(s.get("agent", "")),
            str(s.get("title", "")),
        ]
        for s in items
    ]


def suggestion_table(page: JSON) -> str:
    items = page.get("items") or []
    if not items:
        return "no suggestions"
    body = table(
        ["ID", "STATUS", "RISK", "SOURCE", "AGENT", "TITLE"],
        _suggestion_rows(items),
        colours=_cell_colours,
    )
    return "\n".join([body, *_next_page(page, "suggestions")])


def suggestion_summary(s: JSON) -> str:
    """One line for a suggestion just stored or reviewed, then its findings."""
    head = (
        f"{s['id']}  {_status(str(s['status']))}  risk {_risk(str(s['risk']))}"
        f"  rev {s.get('revision', 1)}  {s.get('title', '')}"
    )
    return "\n".join([head, *_findings(s.get("findings") or [])])


def suggestion_detail(s: JSON, *, show_diff: bool = True) -> str:
    lines = [
        style(f"{s['id']}  {s.get('title', '')}", bold=True),
        f"status    {_status(str(s['status']))}",
        f"risk      {_risk(str(s['risk']))}",
        f"source    {s.get('source', '')}  (agent {s.get('agent', '')})",
        f"revision  {s.get('revision', 1)}  on {s.get('base_ref', 'HEAD')}",
        f"created   {_short_time(s.get('created_at'))}"
        f"   updated {_short_time(s.get('updated_at'))}",
        f"files     {', '.join(s.get('files') or []) or '-'}",
    ]
    if s.get("rationale"):
        lines += ["", "rationale:"]
        lines += [("  " + line).rstrip() for line in str(s["rationale"]).splitlines()]
    if s.get("findings"):
        lines += ["", "findings:", *_findings(s["findings"])]
    reviews = s.get("reviews") or []
    if reviews:
        lines += ["", "reviews:"]
        current = s.get("diff_hash")
        for r in reviews:
            stale = "" if r.get("diff_hash") == current else style("  (earlier revision)", dim=True)
            comment = f": {r['comment']}" if r.get("comment") else ""
            lines.append(
                f"  {_short_time(r.get('at'))}  {r.get('reviewer')}  {r.get('action')}"
                f"{comment}{stale}"
            )
            lines += _line_comments(r.get("comments") or [])
    if show_diff:
        lines += ["", diff(str(s.get("diff", "")))]
    return "\n".join(lines)


def _line_comments(comments: Sequence[JSON]) -> list[str]:
    """``    src/a.py:12 (new)  call it parse_all``; an outdated one says so, a moved one
    says where its line is now."""
    lines = []
    for c in comments:
        where = f"{c.get('file')}:{c.get('line')} ({c.get('side', 'new')})"
        note = ""
        if c.get("outdated"):
            note = style("  (outdated: a later revision changed this line)", dim=True)
        elif c.get("current_line") not in (None, c.get("line")):
            note = style(f"  (now line {c['current_line']})", dim=True)
        body = " ".join(str(c.get("body", "")).split())
        lines.append(f"    {style(where, fg='cyan')}  {body}{note}")
    return lines


def bulk_result(reply: JSON, past: str) -> str:
    """One line per suggestion (decided, or why not), then the count."""
    lines = []
    for item in reply.get("items") or []:
        if item.get("ok"):
            lines.append(f"{item['id']}  {_status(str(item.get('status') or past))}")
        else:
            problem = item.get("problem") or {}
            lines.append(f"{item['id']}  {style('refused', fg='red')}: {problem.get('detail', '')}")
    lines.append(f"{past} {reply.get('ok', 0)}, refused {reply.get('refused', 0)}")
    return "\n".join(lines)


def revision_table(reply: JSON) -> str:
    items = reply.get("items") or []
    rows = [
        [
            str(r.get("number")),
            _short_time(r.get("at")),
            str(r.get("by") or "-"),
            str(r.get("via") or "-").removeprefix("suggest."),
            str(r.get("diff_hash", ""))[7:19],
            str(r.get("title", "")),
        ]
        for r in items
    ]
    return table(["REV", "AT", "BY", "VIA", "HASH", "TITLE"], rows) if rows else "no revisions"


def revision_detail(r: JSON) -> str:
    lines = [
        style(
            f"revision {r.get('number')} of {r.get('suggestion_id')}  {r.get('title', '')}",
            bold=True,
        ),
        f"made      {_short_time(r.get('at'))} by {r.get('by') or '-'}"
        + (f" ({r['via']})" if r.get("via") else ""),
        f"files     {', '.join(r.get('files') or []) or '-'}",
    ]
    if r.get("rationale"):
        lines += [
            "",
            "rationale:",
            *(("  " + x).rstrip() for x in str(r["rationale"]).splitlines()),
        ]
    return "\n".join([*lines, "", diff(str(r.get("diff", "")))])


def interdiff(reply: JSON) -> str:
    head = f"changes from revision {reply.get('from')} to {reply.get('to')} of {reply.get('id')}"
    lines = [style(head, bold=True)]
    notes = [style(f"note: {n}", fg="yellow") for n in reply.get("notes") or []]
    if reply.get("diff"):
        lines.append(diff(str(reply["diff"])))
    elif not notes:
        lines.append("no change: both produce the same files")
    return "\n".join([*lines, *notes])


def generate_result(result: JSON) -> str:
    items = result.get("items") or []
    count = result.get("count", len(items))
    lines = [f"created {count} suggestion{'' if count == 1 else 's'}"]
    unchanged = result.get("unchanged") or 0
    if unchanged:
        lines[0] += f", {unchanged} unchanged (already open)"
    superseded = result.get("superseded") or []
    if superseded:
        lines[0] += f", {len(superseded)} superseded: {', '.join(superseded)}"
    if items:
        lines.append(
            table(
                ["ID", "STATUS", "RISK", "SOURCE", "AGENT", "TITLE"],
                _suggestion_rows(items),
                colours=_cell_colours,
            )
        )
    return "\n".join(lines)


# -- plans ----------------------------------------------------------------------
def plan_table(page: JSON) -> str:
    items = page.get("items") or []
    if not items:
        return "no plans"
    rows = [
        [
            str(p["id"]),
            _short_time(p.get("created_at")),
            str(len(p.get("variants") or [])),
            str(p.get("selected") or "-"),
            str(p.get("goal", "")),
        ]
        for p in items
    ]
    body = table(["ID", "CREATED", "VARIANTS", "SELECTED", "GOAL"], rows)
    return "\n".join([body, *_next_page(page, "plans")])


def plan_detail(p: JSON, *, show_diff: bool = False) -> str:
    lines = [
        style(f"{p['id']}  {p.get('goal', '')}", bold=True),
        f"created   {_short_time(p.get('created_at'))} by {p.get('created_by', '')}",
    ]
    selected = p.get("selected")
    if selected:
        lines.append(f"selected  {selected} by {p.get('selected_by') or ''}".rstrip())
    variants = p.get("variants") or []
    rows = [
        [
            ("* " if v["key"] == selected else "  ") + str(v["key"]),
            str(v.get("risk", "unknown")),
            str(len(v.get("suggestion_ids") or [])),
            str(len(v.get("conflicts") or [])),
            str(v.get("title", "")),
        ]
        for v in variants
    ]
    lines += [
        "",
        table(
            ["  VARIANT", "RISK", "SUGGESTIONS", "CONFLICTS", "TITLE"], rows, colours=_cell_colours
        ),
    ]
    prs = p.get("pull_requests") or []
    if prs:
        pr_rows = [
            [
                f"#{pr.get('number')}",
                str(pr.get("state", "")),
                str(pr.get("checks", "")),
                str(pr.get("variant", "")),
                _short_time(pr.get("updated_at")),
                str(pr.get("url") or f"{pr.get('backend')} {pr.get('repository')}"),
            ]
            for pr in prs
        ]
        headers = ["PR", "STATE", "CHECKS", "VARIANT", "UPDATED", "URL"]
        lines += ["", table(headers, pr_rows, colours=_cell_colours)]
    for v in variants:
        for c in v.get("conflicts") or []:
            ids = ", ".join(c.get("suggestion_ids") or [])
            detail = f": {c['detail']}" if c.get("detail") else ""
            lines.append(
                style(f"conflict in {v['key']}: {c.get('file')} ({ids}){detail}", fg="yellow")
            )
    if show_diff:
        for v in variants:
            lines += ["", style(f"variant {v['key']}:", bold=True), diff(str(v.get("diff", "")))]
    elif not selected and variants:
        lines += ["", style(f"choose one: storykit plan select {p['id']} VARIANT", dim=True)]
    return "\n".join(lines)


def pr_result(r: JSON) -> str:
    if r.get("dry_run"):
        branch = style(str(r["branch"]), bold=True)
        lines = [f"dry run ({r.get('backend')}): would create branch {branch}"]
    else:
        lines = [f"created branch {style(str(r['branch']), bold=True)} with {r.get('backend')}"]
        if r.get("commit"):
            lines.append(f"commit  {r['commit']}")
        if r.get("url"):
            lines.append(f"url     {r['url']}")
    operations = r.get("operations") or []
    if operations:
        lines += ["", "operations:", *(f"  {op}" for op in operations)]
    if r.get("diff"):
        lines += ["", diff(str(r["diff"]))]
    if r.get("dry_run"):
        lines += [
            "",
            style(
                "nothing was changed; add --no-dry-run to do it (with PR_BACKEND set to git,"
                " github or gitlab)",
                dim=True,
            ),
        ]
    return "\n".join(lines)


# -- policies -------------------------------------------------------------------
def policies(data: JSON) -> str:
    document = data.get("policies") or {}
    lines = [f"policy version {data.get('version')}"]
    if not document:
        lines.append("no policy is configured")
    for name, section in sorted(document.items()):
        lines += ["", style(f"{name}:", bold=True)]
        lines += [
            "  " + line for line in json.dumps(section, indent=2, sort_keys=True).splitlines()
        ]
    return "\n".join(lines)


def decision(d: JSON) -> str:
    outcome = str(d.get("outcome"))
    lines = [
        f"{style(outcome, fg=_SEVERITY_COLOURS.get(outcome), bold=True)}"
        f"  risk {_risk(str(d.get('risk')))}"
        f"  (policy version {d.get('policy_version', '')})",
        *_findings(d.get("findings") or []),
    ]
    return "\n".join(lines)


# -- system ---------------------------------------------------------------------
def plugins(data: JSON) -> str:
    rows = []
    for p in data.get("plugins") or []:
        package = f"{p.get('package')} {p.get('version')}" if p.get("package") else "-"
        backends = ", ".join(f"{b['kind']}:{b['name']}" for b in p.get("backends") or []) or "-"
        hooks = ", ".join(h.removeprefix("storykit_") for h in p.get("hooks") or [])
        rows.append([str(p["name"]), package, backends, hooks])
    lines = [f"storykit {data.get('version')}"]
    backend = data.get("pr_backend")
    if backend:
        note = (
            " (previews only: `storykit pr --no-dry-run` is refused)"
            if backend == "dry-run"
            else ""
        )
        lines.append(f"PR_BACKEND {backend}{note}")
    lines.append(table(["PLUGIN", "PACKAGE", "BACKENDS", "HOOKS"], rows) if rows else "no plugins")
    errors = data.get("errors") or []
    if errors:
        lines += ["", style("recent plugin errors:", fg="red")]
        lines += [
            f"  {_short_time(e.get('at'))}  {e.get('plugin')} in {e.get('hook')}:"
            f" {e.get('message')}"
            for e in errors
        ]
    return "\n".join(lines)


_LIST_SHOWN = 5
_TEXT_SHOWN = 60


def _scalar(value: object) -> str:
    """One value, short: an event line stays a line (a PR's diff and operations are
    summarised; ``--json`` prints everything)."""
    if isinstance(value, list):
        if len(value) > _LIST_SHOWN or any("\n" in str(v) for v in value):
            return f"<{len(value)} items>"
        return ",".join(str(v) for v in value)
    text = str(value)
    if "\n" in text.rstrip("\n"):
        return f"<{len(text.splitlines())} lines>"
    if len(text) > _TEXT_SHOWN:
        return text[: _TEXT_SHOWN - 1] + "…"
    return text


def event_line(event: JSON) -> str:
    """``ID  TIME  TYPE  key=value …``: the event's data flattened to one line."""
    data = event.get("data") or {}
    shown = " ".join(
        f"{k}={_scalar(v)}"
        for k, v in sorted(data.items())  # sorted: the same text from the server and locally
        if v not in (None, "", []) and not isinstance(v, dict) and k != "diff_hash"
    )
    kind = str(event.get("type"))
    head = f"{event.get('id'):>6}  {_short_time(event.get('at'))}  "
    width = _width()
    room = None if width is None else max(width - len(head) - len(kind) - 2, 20)
    return head + style(kind, fg="cyan") + ("  " + _clip(shown, room) if shown else "")
