"""Who may call what: the role each route needs, checked before the route runs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from quart import current_app, g

from storykit.auth import Principal, Role
from storykit.models import to_dict
from storykit.services import Storykit
from storykit_quart.state import HostState

__all__ = ["ROLE_ATTR", "Reply", "actor", "core", "page", "public", "requires", "state"]

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


def page(items: Sequence[Any], limit: int, head: int) -> dict[str, Any]:
    """A keyset page: ``next_after`` is the last id when the page is full, else None;
    ``head`` the newest event id, read before the items (so every change up to it is in)."""
    return {
        "items": [to_dict(item) for item in items],
        "next_after": items[-1].id if len(items) == limit else None,
        "head": head,
    }


def actor() -> Principal:
    return g.principal  # type: ignore[no-any-return]
