"""The tools of SPEC §9: their JSON Schemas, and one function that calls them.

Each tool parses its arguments (pydantic, unknown keys refused), calls one use case
on the :class:`~storykit_mcp.gateway.Gateway` and renders the JSON as structured
content (and as text, for clients that read only text). No tool approves, rejects or
changes policy: agents propose, people decide.

Every failure is a tool error (``isError``) whose text is what the HTTP API puts in a
problem's ``detail``, so an agent reads the same sentence whichever way it came.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

import mcp.types as types
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from storykit.errors import StorykitError
from storykit.models import PolicyDecision, Review, Revision, Risk, Status, Suggestion
from storykit_mcp.gateway import JSON, MAX_WAIT, Gateway, decision

__all__ = ["TOOLS", "TOOL_NAMES", "call_tool", "tool_error"]

log = logging.getLogger("storykit.mcp")

_ID_PATTERN = r"^sug_[0-9A-HJKMNP-TV-Z]{26}$"
# Documented only: the core checks ids and says what is wrong in the HTTP API's words.
SuggestionId = Annotated[
    str, Field(description="A suggestion id (sug_…).", json_schema_extra={"pattern": _ID_PATTERN})
]
StatusName = Literal[
    "pending", "approved", "revision_requested", "rejected", "blocked", "superseded"
]
assert set(get_args(StatusName)) == {s.value for s in Status}


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CheckDiffArgs(_Args):
    diff: str = Field(description="A unified diff (git style).")
    title: str = Field("", description="What the change does (some policies read it).")
    rationale: str = Field("", description="Why the change is worth making.")
    base_ref: str = Field(
        "HEAD", description="The git ref the diff applies to (as for submit_suggestion)."
    )


class SubmitArgs(_Args):
    title: str = Field(description="One line saying what the change does.")
    diff: str = Field(description="A unified diff (git style) against base_ref.")
    rationale: str = Field("", description="Why the change is worth making.")
    base_ref: str = Field("HEAD", description="The git ref the diff applies to.")
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Any unique string: a retry with the same key and arguments returns the"
        " first result instead of a second suggestion (as the HTTP Idempotency-Key header).",
    )


class GetArgs(_Args):
    id: SuggestionId


class WaitArgs(_Args):
    id: SuggestionId
    timeout_s: float = Field(
        MAX_WAIT,
        ge=0,
        json_schema_extra={"maximum": MAX_WAIT},
        description=f"How long to wait for a decision, in seconds (at most {MAX_WAIT:g};"
        " a longer time counts as that).",
    )


class ReviseArgs(_Args):
    id: SuggestionId
    diff: str = Field(description="The whole new diff (it replaces the current one).")
    note: str | None = Field(
        None,
        description="What changed and why, for the reviewer; it becomes the suggestion's"
        " rationale (omit it to keep the current one).",
    )


class RevisionsArgs(_Args):
    id: SuggestionId
    since: int | None = Field(
        None,
        ge=1,
        description="Also return what changed from this revision to the current one: the"
        " diff between the files each produces (`changes`).",
    )


class RevisionsResult(BaseModel):
    items: list[Revision] = Field(description="Every revision, oldest first.")
    changes: str | None = Field(
        description="With `since`: a unified diff from that revision's files to the current's."
    )


class ListArgs(_Args):
    status: StatusName | None = Field(None, description="Only suggestions with this status.")
    after: SuggestionId | None = Field(None, description="Start after this id (the next page).")
    limit: int = Field(50, ge=1, le=200, description="At most this many.")


# -- results ---------------------------------------------------------------------------
class WaitResult(BaseModel):
    id: str
    status: Literal[
        "approved", "revision_requested", "rejected", "blocked", "superseded", "pending"
    ] = Field(
        description="What a person decided on the current revision; blocked: policy blocked"
        " it (revise it); superseded: its source proposed another change instead; pending:"
        " nobody decided yet (ask again)."
    )
    decided: bool = Field(description="A person decided on the current revision.")
    review: Review | None = Field(
        description="That decision, with the reviewer's comment and line comments"
        " (`comments`: file, line, side, body) saying exactly which lines to change."
    )
    retry_after_s: int | None = Field(
        description="When pending: seconds to wait before calling wait_for_review again."
    )
    suggestion: Suggestion


class SuggestionSummary(BaseModel):
    id: str
    title: str
    status: Status
    risk: Risk
    revision: int
    files: list[str]
    findings: int = Field(description="How many findings policy gave (get_suggestion lists them).")
    updated_at: datetime


class SuggestionList(BaseModel):
    items: list[SuggestionSummary]
    next_after: str | None = Field(description="Pass as `after` for the next page.")


_ACTION_STATUS = {"approve": "approved", "revise": "revision_requested", "reject": "rejected"}
RETRY_AFTER_S = 1


def _wait_result(s: JSON) -> JSON:
    review = decision(s)
    if review is not None:
        status = _ACTION_STATUS[review["action"]]
    else:
        status = s["status"] if s["status"] in ("blocked", "superseded") else "pending"
    return {
        "id": s["id"],
        "status": status,
        "decided": review is not None,
        "review": dict(review) if review is not None else None,
        "retry_after_s": RETRY_AFTER_S if status == "pending" else None,
        "suggestion": s,
    }


def _summary(s: JSON) -> JSON:
    keys = ("id", "title", "status", "risk", "revision", "files", "updated_at")
    return {k: s[k] for k in keys} | {"findings": len(s.get("findings") or ())}


# -- the tools -------------------------------------------------------------------------
async def _check_diff(g: Gateway, a: CheckDiffArgs) -> JSON:
    return await g.check_diff(
        diff=a.diff, title=a.title, rationale=a.rationale, base_ref=a.base_ref
    )


async def _submit(g: Gateway, a: SubmitArgs) -> JSON:
    return await g.submit(
        title=a.title,
        diff=a.diff,
        rationale=a.rationale,
        base_ref=a.base_ref,
        idempotency_key=a.idempotency_key,
    )


async def _get(g: Gateway, a: GetArgs) -> JSON:
    return await g.get_suggestion(a.id)


async def _wait(g: Gateway, a: WaitArgs) -> JSON:
    return _wait_result(await g.wait_for_review(a.id, seconds=min(a.timeout_s, MAX_WAIT)))


async def _revise(g: Gateway, a: ReviseArgs) -> JSON:
    return await g.revise(a.id, diff=a.diff, rationale=a.note)


async def _revisions(g: Gateway, a: RevisionsArgs) -> JSON:
    listed = await g.list_revisions(a.id)
    changes = None
    if a.since is not None:
        changes = (await g.interdiff(a.id, start=a.since))["diff"]
    return {"items": listed["items"], "changes": changes}


async def _list(g: Gateway, a: ListArgs) -> JSON:
    page = await g.list_mine(status=a.status, after=a.after, limit=a.limit)
    return {"items": [_summary(s) for s in page["items"]], "next_after": page["next_after"]}


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class _Spec:
    name: str
    title: str
    description: str
    args: type[_Args]
    result: Any
    run: Callable[[Gateway, Any], Awaitable[JSON]]
    read_only: bool

    def tool(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.args.model_json_schema(),
            output_schema=TypeAdapter(self.result).json_schema(mode="serialization"),
            annotations=types.ToolAnnotations(
                title=self.title,
                read_only_hint=self.read_only,
                destructive_hint=False,
                idempotent_hint=self.read_only,
                open_world_hint=False,
            ),
        )


_SPECS = (
    _Spec(
        name="check_diff",
        title="Check a diff against policy",
        description="Screen a unified diff against storykit's policies without storing"
        " anything. Returns the outcome (allow, warn or deny), the risk and the findings that"
        " say why. Use it before submit_suggestion to fix what policy would block.",
        args=CheckDiffArgs,
        result=PolicyDecision,
        run=_check_diff,
        read_only=True,
    ),
    _Spec(
        name="submit_suggestion",
        title="Submit a suggestion for review",
        description="Propose a change as a unified diff with a title (and a rationale) for a"
        " person to review. It is screened by policy at once: the stored suggestion comes back"
        " with its id, status (pending, or blocked with the findings that say why), risk and"
        " findings. Then call wait_for_review with the id.",
        args=SubmitArgs,
        result=Suggestion,
        run=_submit,
        read_only=False,
    ),
    _Spec(
        name="get_suggestion",
        title="Read a suggestion",
        description="One suggestion: its status, risk, findings, diff, and every review with"
        " the reviewer's comment and line comments (each review's `comments`: file, line,"
        " side old/new, body; `outdated` once a later revision changed that line). A"
        " revision request says what to change.",
        args=GetArgs,
        result=Suggestion,
        run=_get,
        read_only=True,
    ),
    _Spec(
        name="wait_for_review",
        title="Wait for a person's decision",
        description="Wait until a person decides on the suggestion's current revision, at most"
        f" timeout_s seconds (at most {MAX_WAIT:g}). Returns at once when it is already"
        " decided. status: approved, revision_requested (read review.comment, then call"
        " revise_suggestion), rejected, blocked (policy blocked it: revise it), or pending"
        " (nobody decided yet: call wait_for_review again after retry_after_s seconds).",
        args=WaitArgs,
        result=WaitResult,
        run=_wait,
        read_only=True,
    ),
    _Spec(
        name="revise_suggestion",
        title="Revise your suggestion",
        description="Replace your suggestion's diff with a new version (after a revision"
        " request, say). It is screened again and waits for a new decision: approvals of"
        " earlier revisions no longer count. Only the agent that proposed it can revise it.",
        args=ReviseArgs,
        result=Suggestion,
        run=_revise,
        read_only=False,
    ),
    _Spec(
        name="list_revisions",
        title="List a suggestion's revisions",
        description="Every revision of a suggestion (diff, title, rationale, who made it and"
        " when), oldest first. With `since`, also what changed from that revision to the"
        " current one, as one diff between the files: check your revision did what the"
        " review asked.",
        args=RevisionsArgs,
        result=RevisionsResult,
        run=_revisions,
        read_only=True,
    ),
    _Spec(
        name="list_my_suggestions",
        title="List your suggestions",
        description="The suggestions you (this key) proposed, newest first, optionally only"
        " those with one status. Each item is a summary; get_suggestion has the details.",
        args=ListArgs,
        result=SuggestionList,
        run=_list,
        read_only=True,
    ),
)
_BY_NAME = {spec.name: spec for spec in _SPECS}
TOOL_NAMES = tuple(_BY_NAME)
TOOLS = tuple(spec.tool() for spec in _SPECS)


def tool_error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        if err.get("type") == "extra_forbidden":
            parts.append(f"{where}: unknown argument")
        elif not err.get("loc"):
            parts.append("the arguments must be a JSON object")
        else:
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = len(exc.errors()) - 5
    return "invalid arguments: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


async def call_tool(
    gateway: Gateway, name: str, arguments: Mapping[str, Any] | None
) -> types.CallToolResult:
    """Run tool ``name``; every failure is a tool error, never an exception."""
    spec = _BY_NAME.get(name)
    if spec is None:
        return tool_error(f"there is no tool {name!r}; the tools are: {', '.join(TOOL_NAMES)}")
    try:
        args = spec.args.model_validate({} if arguments is None else arguments)
        data = await spec.run(gateway, args)
    except ValidationError as exc:
        return tool_error(_describe(exc))
    except StorykitError as exc:
        return tool_error(exc.detail)
    except Exception:
        log.exception("MCP tool %s failed", name)
        return tool_error("something went wrong on the server; see its log")
    text = json.dumps(data, ensure_ascii=False)
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=data)
