"""Request bodies: JSON text only (RFC 8259: UTF-8, no NaN, valid Unicode).

Quart decodes a body before parsing it and lets a ``UnicodeDecodeError`` (a Latin-1
or UTF-16 body) or a ``RecursionError`` (JSON nested 100,000 levels deep) escape as a
500. Here every body that is not JSON text is refused with a 4xx that says what is
wrong with it, before any route sees it, so nothing is stored.
"""

from __future__ import annotations

import json
import re
from typing import Any, NoReturn, cast

from quart import Quart, Request

from storykit.errors import StorykitError

__all__ = ["BadBody", "UnsupportedBody", "install_json_bodies", "parse_json"]

# A ``\\uD800`` to ``\\uDFFF`` escape: only then can a parsed string hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadBody(StorykitError):
    status = 400
    title = "Bad request"


class UnsupportedBody(StorykitError):
    status = 415
    title = "Unsupported media type"


def _no_constants(name: str) -> NoReturn:
    raise BadBody(f"the body is not valid JSON: {name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """The JSON value of a request body, or :class:`BadBody` saying what is wrong."""
    if not raw.strip():
        raise BadBody("the body is empty; send a JSON object")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BadBody("the body is UTF-16; send JSON as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(
            f"the body is not UTF-8 (byte {exc.start} is invalid); send JSON as UTF-8"
        ) from None
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        if "\x00" in text[:4]:  # UTF-16 or UTF-32 without a byte order mark
            raise BadBody("the body is not UTF-8; send JSON as UTF-8") from None
        raise BadBody(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise BadBody("the body nests arrays or objects too deeply") from None
    except ValueError as exc:  # an integer of more than 4300 digits, say
        raise BadBody(f"the body is not valid JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(text) and _holds_a_lone_surrogate(value):
        raise BadBody(
            "the body holds a lone UTF-16 surrogate escape (\\ud800 to \\udfff);"
            " a string must be valid Unicode"
        )
    return value


def _holds_a_lone_surrogate(value: Any) -> bool:
    stack = [value]  # not recursive: the value may be nested as deep as the parser allows
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            stack += item
    return False


class _JSONBodies(Request):
    """How every route reads its JSON body; put before the app's own request class
    (Quart's or quart-trio's, both subclasses of ``Request``)."""

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        raw = await self.get_data(cache=cache, as_text=False, parse_form_data=False)
        if not (force or self.is_json):
            if raw and not silent:
                raise UnsupportedBody("send the body as JSON with Content-Type: application/json")
            return None
        try:
            return parse_json(raw)
        except BadBody:
            if silent:
                return None
            raise


def install_json_bodies(app: Quart) -> None:
    base = app.request_class  # Quart's, or quart-trio's
    app.request_class = cast("type[Request]", type(base.__name__, (_JSONBodies, base), {}))
