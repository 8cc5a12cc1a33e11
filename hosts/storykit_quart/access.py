"""Who may call what: the role each route needs, checked before the route runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from quart import current_app, g

from storykit.auth import Principal, Role
from storykit.services import Storykit
from storykit_quart.state import HostState

__all__ = ["ROLE_ATTR", "actor", "core", "public", "requires", "state"]

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


def actor() -> Principal:
    return g.principal  # type: ignore[no-any-return]
