"""Request bodies and query strings, validated by quart-schema (pydantic).

Unknown keys are refused (``extra="forbid"``), so a misspelt field is an error
that names it rather than a silently ignored option.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StrictBool

from storykit.models import Event, Plan, Revision, Risk, Status, Suggestion

__all__ = [
    "BulkReviewBody",
    "CheckBody",
    "EventLogQuery",
    "GenerateBody",
    "InterdiffQuery",
    "LineCommentBody",
    "PRBody",
    "PageQuery",
    "PlanBody",
    "PoliciesBody",
    "RefineBody",
    "ReviewBody",
    "RevisionBody",
    "SelectBody",
    "SubmitBody",
    "SuggestionQuery",
    "id_pattern",
]


def id_pattern(prefix: str) -> str:
    """What a storykit id with ``prefix`` looks like (``storykit.ids``), for the document."""
    return rf"^{prefix}_[0-9A-HJKMNP-TV-Z]{{26}}$"


# Documented only: the core checks ids and names and says what is wrong in its own words.
SuggestionId = Annotated[str, Field(json_schema_extra={"pattern": id_pattern("sug")})]
PlanId = Annotated[str, Field(json_schema_extra={"pattern": id_pattern("plan")})]
RunId = Annotated[str, Field(json_schema_extra={"pattern": id_pattern("run")})]
StatusName = Annotated[str, Field(json_schema_extra={"enum": [s.value for s in Status]})]
RiskName = Annotated[str, Field(json_schema_extra={"enum": [r.value for r in Risk]})]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SubmitBody(_Body):
    title: str = Field(description="One line saying what the change does.")
    diff: str = Field(description="A unified diff (git style) against base_ref.")
    rationale: str = Field("", description="Why the change is worth making.")
    base_ref: str = Field("HEAD", description="The git ref the diff applies to.")


class RevisionBody(_Body):
    diff: str
    title: str | None = None
    rationale: str | None = None


class GenerateBody(_Body):
    sources: list[str] | None = Field(None, description="Source names; default: all.")
    paths: list[str] = Field(default_factory=list, description="Repository-relative paths.")
    run: RunId | None = Field(
        None,
        description="The id the run's events carry (default: a new one). A client that"
        " watches `GET /events` for its progress makes one (`run_` and a ULID) before it"
        " starts, so it can tell its run's events from those of runs started meanwhile.",
    )


class RefineBody(_Body):
    id: SuggestionId
    instructions: str = ""
    refiner: str | None = None


class LineCommentBody(_Body):
    file: str = Field(description="The file, as the suggestion's `files` names it.")
    line: int = Field(description="The line number (from 1) on `side` of the current diff.")
    side: Literal["old", "new"] = Field(
        "new",
        description="`new`: a line of the file after the change (an added or context line);"
        " `old`: before it (a removed or context line). The line must be one the diff shows"
        " on that side (422 otherwise).",
    )
    body: str = Field(description="What to say about that line.")


class ReviewBody(_Body):
    id: SuggestionId
    action: Literal["approve", "revise", "reject"]
    comment: str = ""
    comments: list[LineCommentBody] = Field(
        default_factory=list,
        description="Comments on lines of the current diff, besides `comment` (at most 200)."
        " A revise request needs a comment or at least one line comment.",
    )


class FilterBody(_Body):
    status: StatusName | None = None
    source: str | None = None
    agent: str | None = None
    risk: RiskName | None = None


class BulkReviewBody(_Body):
    ids: list[SuggestionId] | None = Field(
        None, description="The suggestions to decide on (at most 200); or give `filter`."
    )
    filter: FilterBody | None = Field(
        None,
        description="Decide on the suggestions it matches (as `GET /suggestions` filters),"
        " newest first, at most `limit` of them; or give `ids`.",
    )
    action: Literal["approve", "revise", "reject"]
    comment: str = Field("", description="One comment for every decision.")
    limit: int = Field(200, ge=1, le=200, description="With `filter`: at most this many.")


class PlanBody(_Body):
    goal: str
    suggestion_ids: list[SuggestionId] | None = Field(
        None, description="Default: every approved one."
    )


class SelectBody(_Body):
    variant: str


class PRBody(_Body):
    plan_id: PlanId
    variant: str | None = Field(None, description="Default: the plan's selected variant.")
    dry_run: StrictBool = True
    branch: str | None = Field(
        None,
        description="The branch to create, used exactly (409 if it exists; 422 if git would"
        " not accept the name). Default: storykit/<plan>-<variant>, with -2, -3, … added"
        " when that is taken.",
    )


class PoliciesBody(RootModel[dict[str, Any]]):
    """The policy document: policy name → that policy's settings, or what ``GET
    /policies`` returned (``{"version", "policies"}``), edited."""


class CheckBody(_Body):
    diff: str
    title: str = ""
    rationale: str = ""
    base_ref: str = "HEAD"
    """The commit the diff applies to, as for a submission."""


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PageQuery(_Query):
    """A page of plans."""

    after: PlanId | None = None
    limit: int = Field(50, ge=1, le=200)


class SuggestionQuery(_Query):
    after: SuggestionId | None = None
    limit: int = Field(50, ge=1, le=200)
    status: StatusName | None = None
    source: str | None = None
    agent: str | None = None
    risk: RiskName | None = None


class InterdiffQuery(_Query):
    from_: int | None = Field(
        None, alias="from", ge=1, description="Default: the revision before `to`."
    )
    to: int | None = Field(None, ge=1, description="Default: the current revision.")


class EventLogQuery(_Query):
    after: int = Field(0, ge=0, le=2**63 - 1)  # SQLite's integers
    limit: int = Field(100, ge=1, le=1000)


# -- responses (documented in the OpenAPI document; shapes are the core's models) ---------


_HEAD = (
    "The newest event id when the list was read: every change up to it is in the list, so"
    " `GET /events` with `Last-Event-ID: <head>` brings every later one."
)


class SuggestionPage(BaseModel):
    items: list[Suggestion]
    next_after: str | None = Field(None, description="Pass as `after` for the next page.")
    head: int = Field(description=_HEAD)


class PlanPage(BaseModel):
    items: list[Plan]
    next_after: str | None = None
    head: int = Field(description=_HEAD)


class GenerateReply(BaseModel):
    items: list[Suggestion] = Field(description="The suggestions stored.")
    count: int
    unchanged: int = Field(
        description="Proposals that repeated an open suggestion (same source, base, files and"
        " diff): not stored again."
    )
    superseded: list[str] = Field(
        description="Ids of undecided suggestions marked `superseded`: their source now"
        " proposes another change for the same files."
    )
    errors: list[str] = Field(description="Sources that failed, each with the reason.")


class RevisionList(BaseModel):
    items: list[Revision] = Field(description="Oldest first; the current one last.")


class InterdiffReply(BaseModel):
    id: str
    from_: int = Field(alias="from")
    to: int
    diff: str = Field(
        description="A unified diff from the files revision `from` produces to those `to`"
        " produces (empty: the same). Context lines are those either revision's diff shows."
    )
    files: list[str]
    notes: list[str] = Field(description="Files compared only as patches (binary, say).")


class Problem(BaseModel):
    """RFC 9457 problem details: every error looks like this."""

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None


class BulkItemReply(BaseModel):
    id: str
    ok: bool
    status: StatusName | None = Field(None, description="The status after the decision.")
    problem: Problem | None = Field(
        None, description="Why it was refused: the problem deciding on it alone answers with."
    )


class BulkReply(BaseModel):
    items: list[BulkItemReply] = Field(description="One per suggestion, in the order asked.")
    ok: int = Field(description="How many were decided.")
    refused: int = Field(description="How many were refused.")


class PolicyDocument(BaseModel):
    version: str = Field(description="A hash of the effective policy document.")
    policies: dict[str, dict[str, Any]]


class EventPage(BaseModel):
    items: list[Event]
    last_id: int
    head: int = Field(description="The newest event id in the log when the page was read.")


class Ticket(BaseModel):
    ticket: str
    expires_in: int


class Me(BaseModel):
    name: str
    role: Literal["agent", "reviewer", "admin"]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    version: str
    database: Literal["ok", "unavailable"]
    redis: Literal["ok", "unavailable"] | None = None
    """Only with ``REDIS_URL`` (rate limits in Redis)."""


class PluginFailureModel(BaseModel):
    plugin: str
    hook: str
    message: str
    at: datetime


class PluginInfo(BaseModel):
    name: str
    hooks: list[str]
    backends: list[dict[str, str]]
    package: str | None
    version: str | None


class PluginsReply(BaseModel):
    version: str
    plugins: list[PluginInfo]
    errors: list[PluginFailureModel]
    pr_backend: str = Field(
        description="The PR backend a real run uses (PR_BACKEND); 'dry-run' means real runs"
        " are refused."
    )
