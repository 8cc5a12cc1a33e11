"""Every error as ``application/problem+json`` (RFC 9457): one place maps them all."""

from __future__ import annotations

import logging
import math
from typing import Any, NoReturn

from pydantic import ValidationError
from quart import Quart, Response, has_request_context, json, request
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import RequestRedirect

from storykit.errors import RateLimited, StorykitError
from storykit_quart.pipeline import CALL

__all__ = ["install_error_handlers", "problem"]

log = logging.getLogger("storykit.http")


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail} | extra
    request_id = _request_id()
    if request_id:
        body["request_id"] = request_id
    return Response(json.dumps(body), status=status, content_type="application/problem+json")


def _request_id() -> str | None:
    call = request.scope.get(CALL) if has_request_context() else None
    return getattr(call, "request_id", None)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        if err.get("type") == "extra_forbidden":
            parts.append(f"{where}: unknown field")
        elif not err.get("loc") and err.get("type") in ("model_type", "dict_type"):
            parts.append("the body must be a JSON object")
        else:
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _no_redirects(request: Any) -> NoReturn:
    """Werkzeug answers a path it would match after merging slashes (``/a//b``, or
    ``%2F`` in a path parameter) with a 308 HTML page whose absolute ``Location`` comes
    from the ``Host`` header. There is no such route: say so, as a problem."""
    exc = request.routing_exception
    if isinstance(exc, RequestRedirect):
        raise NotFound() from None
    raise exc


def install_error_handlers(app: Quart) -> None:
    app.raise_routing_exception = _no_redirects  # type: ignore[method-assign]

    @app.errorhandler(StorykitError)
    async def storykit_error(exc: StorykitError) -> Response:
        response = problem(exc.status, exc.title, exc.detail)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'APIKey header="X-API-Key"'
        return response

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(exc: RequestSchemaValidationError) -> Response:
        cause = exc.validation_error
        if isinstance(cause, ValidationError):
            return problem(422, "Invalid input", _describe(cause))
        if isinstance(cause, TypeError):
            return problem(400, "Bad request", "the body must be a JSON object")
        return problem(422, "Invalid input", str(cause))

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        detail = {
            404: "no such route; see /openapi.json for the API",
            405: "this route does not take that method",
            413: "the request body is larger than MAX_BODY_BYTES allows",
        }.get(status, exc.description or exc.name)
        response = problem(status, exc.name, detail)
        for name, value in exc.get_headers():
            if name.lower() == "allow":  # a 405 names the methods the route takes
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"request_id": _request_id()})
        return problem(500, "Internal error", "something went wrong on the server; see its log")
