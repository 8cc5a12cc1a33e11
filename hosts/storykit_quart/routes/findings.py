"""A suggestion's findings as SARIF 2.1.0, for code-scanning uploaders and reviewdog."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, json
from quart_schema import document_response, tag

from storykit.auth import Role
from storykit.sarif import MEDIA_TYPE, sarif_log
from storykit_quart.access import core, requires
from storykit_quart.openapi import media_type

bp = Blueprint("findings", __name__)


class SarifLog(BaseModel):
    """A SARIF 2.1.0 log (see the OASIS SARIF 2.1.0 schema for every field)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: str = Field(alias="$schema")
    version: str = Field(json_schema_extra={"const": "2.1.0"})
    runs: list[dict[str, Any]] = Field(description="One run: storykit, its rules and results.")


@bp.get("/suggestions/<suggestion_id>/findings.sarif")
@document_response(SarifLog)
@media_type(MEDIA_TYPE)
@tag(["suggestions"])
@requires(Role.AGENT)
async def findings_sarif(suggestion_id: str) -> Response:
    """The suggestion's findings as a SARIF 2.1.0 log: one run, one result per finding.

    Each result has ``ruleId`` (``policy/rule``), ``level`` (deny → error, warn →
    warning, allow → note), ``message.text`` and a repository-relative location; a
    finding without a file is placed at line 1 of the first changed file. There are no
    ``partialFingerprints``: uploaders compute their own.
    """
    log = sarif_log(await core().get_suggestion(suggestion_id))
    return Response(json.dumps(log), content_type=MEDIA_TYPE)
