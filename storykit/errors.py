"""The errors storykit raises on purpose.

Every one carries an HTTP status hint; each host maps them once (problem+json in
the web host, one readable line and an exit code in the CLI). Anything else that
escapes is a bug.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotConfigured",
    "NotFound",
    "PayloadTooLarge",
    "PluginError",
    "PolicyDenied",
    "PreconditionFailed",
    "RateLimited",
    "StorykitError",
    "Unauthorized",
    "Unavailable",
]


class StorykitError(Exception):
    """Base class. ``status`` is the HTTP status a host should answer with."""

    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Invalid(StorykitError):
    status = 422
    title = "Invalid input"


class NotFound(StorykitError):
    status = 404
    title = "Not found"


class Conflict(StorykitError):
    """The request is well-formed but conflicts with the current state."""

    status = 409
    title = "Conflict"


class PreconditionFailed(StorykitError):
    """What the caller read has changed since (``If-Match`` on ``PUT /policies``)."""

    status = 412
    title = "Precondition failed"


class Unauthorized(StorykitError):
    status = 401
    title = "Unauthorized"


class Forbidden(StorykitError):
    status = 403
    title = "Forbidden"


class PolicyDenied(StorykitError):
    status = 403
    title = "Denied by policy"


class PayloadTooLarge(StorykitError):
    status = 413
    title = "Payload too large"


class RateLimited(StorykitError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class NotConfigured(StorykitError):
    """A feature needs configuration it does not have (the detail says how to add it)."""

    status = 503
    title = "Not configured"


class BackendError(StorykitError):
    """An external system (git, a forge, an LLM, OPA) failed."""

    status = 502
    title = "Backend error"


class Unavailable(BackendError):
    """A service storykit needs (the database) does not answer now; retrying later may work."""

    status = 503
    title = "Service unavailable"


class PluginError(StorykitError):
    """A plugin raised or timed out; names the plugin and the hook."""

    status = 502
    title = "Plugin error"

    def __init__(self, detail: str, *, plugin: str, hook: str) -> None:
        super().__init__(f"plugin {plugin!r} failed in {hook}: {detail}")
        self.plugin = plugin
        self.hook = hook
