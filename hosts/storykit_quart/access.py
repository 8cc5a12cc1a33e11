"""Who may call what: the role each route needs, checked before the route runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from quart import current_app, request

from storykit.auth import Principal, Role
from storykit.services import Storykit
from storykit_quart.pipeline import CALL, Call
from storykit_quart.state import HostState

__all__ = [
    "ROLE_ATTR",
    "Reply",
    "actor",
    "core",
    "public",
    "request_id",
    "requires",
    "state",
]

Reply = tuple[dict[str, Any], int] | tuple[dict[str, Any], int, dict[str, str]] | dict[str, Any]

F = TypeVar("F", bound=Callable[..., Any])
ROLE_ATTR = "_storykit_role"
PUBLIC = "public"


def requires(role: Role) -> Callable[[F], F]:
    """The route needs a key with at least ``role``."""

    def mark(fn: F) -> F:
        setattr(fn, ROLE_ATTR, role)
        return fn

    return mark


def public(fn: F) -> F:
    """The route needs no key."""
    setattr(fn, ROLE_ATTR, PUBLIC)
    return fn


def state() -> HostState:
    return current_app.extensions["storykit"]  # type: ignore[no-any-return]


def core() -> Storykit:
    return state().require_core()


def _call() -> Call | None:
    call = request.scope.get(CALL)  # left there by the pipeline (storykit_quart.pipeline)
    return call if isinstance(call, Call) else None


def actor() -> Principal:
    """Who is calling: the key the pipeline checked before the route ran."""
    call = _call()
    if call is None or call.principal is None:  # never: the pipeline refuses first
        raise RuntimeError("no checked key for this request")
    return call.principal


def request_id() -> str | None:
    call = _call()
    return call.request_id if call is not None else None
