"""The dashboard page at ``/story/ui`` and its static files."""

from __future__ import annotations

from quart import Blueprint, Response
from quart_schema import hide

from storykit_quart.access import public

bp = Blueprint("ui", __name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>storykit</title></head>
<body><h1>storykit</h1><p>The dashboard is being built.</p></body></html>
"""


@bp.get("/story/ui")
@hide
@public
async def page() -> Response:
    return Response(_PAGE, content_type="text/html; charset=utf-8")
