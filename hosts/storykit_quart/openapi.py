"""The OpenAPI document: quart-schema's, plus what it cannot see.

quart-schema documents each route's success answers. This adds, from what the routes
declare (role, body, query, path parameters): the problem+json errors each can answer,
``security: []`` on the routes that need no key, ``/metrics`` (Prometheus text) and
``GET /events`` (served by :mod:`storykit_quart.sse`, not by a Quart route).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from quart_schema import APIKeySecurityScheme
from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import (
    QUART_SCHEMA_QUERYSTRING_ATTRIBUTE,
    QUART_SCHEMA_REQUEST_ATTRIBUTE,
)
from werkzeug.routing import BaseConverter, Rule

from storykit_quart.access import PUBLIC, ROLE_ATTR
from storykit_quart.schemas import Problem, id_pattern

__all__ = ["SECURITY_SCHEMES", "StorykitOpenAPI", "media_type"]

F = TypeVar("F", bound=Callable[..., Any])
_MEDIA_TYPE_ATTR = "_storykit_media_type"


def media_type(name: str) -> Callable[[F], F]:
    """The route's 200 answer is ``name`` (``application/sarif+json``, say), not plain JSON."""

    def mark(fn: F) -> F:
        setattr(fn, _MEDIA_TYPE_ATTR, name)
        return fn

    return mark


SECURITY_SCHEMES = {
    "apiKey": APIKeySecurityScheme(in_="header", name="X-API-Key"),
    "keyInQuery": APIKeySecurityScheme(in_="query", name="key"),
    "ticket": APIKeySecurityScheme(in_="query", name="ticket"),
}
"""``keyInQuery`` and ``ticket`` are for ``GET /events`` only (EventSource sends no headers)."""

_ID_PREFIXES = {"suggestion_id": "sug", "plan_id": "plan"}
_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_WHY = {
    400: "The body is not JSON text (not UTF-8, malformed, nested too deeply) or not an object.",
    401: "No key, or an unknown one: send it in `X-API-Key`.",
    403: "The key's role does not allow this, or a rule forbids it (an agent approving, say).",
    404: "No such id.",
    413: "The body is larger than `MAX_BODY_BYTES`.",
    415: "The body is not sent as `Content-Type: application/json`.",
    422: "Invalid input: `detail` names each field and what is wrong with it.",
    429: "Too many requests from this key: retry after `Retry-After` seconds.",
}
_OTHER = (
    "Any other error: 409 a conflict with the current state (retry), 412 `If-Match` no longer"
    " matches, 502 a plugin or backend failed (named in `detail`), 503 not configured (`detail`"
    " says how), 500 a bug (the server log has it under `request_id`)."
)
_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def _problem(description: str, status: int | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/problem+json": {"schema": _PROBLEM}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def _errors(*statuses: int) -> dict[str, Any]:
    out = {str(s): _problem(_WHY[s], s) for s in sorted(set(statuses))}
    return out | {"default": _problem(_OTHER)}


_EVENTS: dict[str, Any] = {
    "get": {
        "tags": ["events"],
        "operationId": "get_events",
        "summary": "The live event stream (Server-Sent Events).",
        "description": (
            "Opens with `retry:`; then each event as `id: N` and `data: {id, type, at, data}`;"
            " `event: gap` with `{first_id, last_id, count}` when this stream's queue dropped"
            " events (fetch them from `/events/log`); `:-hb` comments while idle. Browsers"
            " cannot send headers with EventSource: use `?ticket=` (from `POST /events/ticket`)"
            " rather than `?key=`, so the key never sits in a URL. Never answers 429."
        ),
        "parameters": [
            {
                "name": "last_event_id",
                "in": "query",
                "description": "Resume after this id (as `Last-Event-ID`).",
                "schema": {"type": "integer", "minimum": 0},
            },
            {
                "name": "Last-Event-ID",
                "in": "header",
                "description": "Resume after this id (EventSource sends it on reconnect).",
                "schema": {"type": "integer", "minimum": 0},
            },
        ],
        "security": [{name: []} for name in SECURITY_SCHEMES],
        "responses": {
            "200": {
                "description": "The stream, until the client or the server ends it.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "400": _problem("`Last-Event-ID` is not a whole number of 0 or more."),
            "401": _problem("No key or ticket, an unknown key, or a used or expired ticket."),
            "default": _problem(_OTHER),
        },
    }
}


class StorykitOpenAPI(OpenAPIProvider):
    _doc: dict[str, Any] | None = None

    def schema(self) -> dict[str, Any]:
        # Built once per app (its routes are fixed by then): building takes tens of
        # milliseconds, and /openapi.json needs no key.
        if self._doc is None:
            doc = super().schema()
            doc["components"]["schemas"]["Problem"] = Problem.model_json_schema()
            doc["paths"]["/events"] = _EVENTS
            self._doc = doc
        return self._doc

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if name in _ID_PREFIXES:
            parameter["schema"]["pattern"] = id_pattern(_ID_PREFIXES[name])
        return parameter

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        view = self._app.view_functions[rule.endpoint]
        metrics = rule.endpoint == "system.metrics"
        media = getattr(view, _MEDIA_TYPE_ATTR, None)
        public = getattr(view, ROLE_ATTR, None) == PUBLIC or (
            metrics and self._app.extensions["storykit"].settings.metrics_public
        )
        statuses: list[int] = [] if public else [401, 403, 429]
        if getattr(view, QUART_SCHEMA_REQUEST_ATTRIBUTE, None) is not None:
            statuses += [400, 413, 415, 422]
        if getattr(view, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, None) is not None:
            statuses.append(422)
        if rule.arguments:
            statuses += [404, 422]
        for operations in paths.values():
            for method, operation in operations.items():
                # quart-schema keys its statuses by int; JSON keys are strings anyway.
                documented = {str(k): v for k, v in operation["responses"].items()}
                responses = _errors(*statuses) | documented
                if media is not None:  # quart-schema documents every answer as JSON
                    body = responses["200"]["content"].pop("application/json")
                    responses["200"] = {**responses["200"], "content": {media: body}}
                if metrics:
                    responses["200"] = {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                operations[method] = operation = {**operation, "responses": responses}
                if "requestBody" in operation:  # a JSON object, ``{}`` at least
                    operation["requestBody"] = {**operation["requestBody"], "required": True}
                if public:
                    operation["security"] = []
        return paths, components
