"""Who runs the CLI: the local mode's actor, and the default name for a new key."""

from __future__ import annotations

__all__ = ["local_user"]


def local_user() -> str:
    """The OS user's name (``local`` where the system has none to give)."""
    import getpass

    try:
        return getpass.getuser() or "local"
    except (KeyError, OSError):  # no USER/LOGNAME and no passwd entry (some containers)
        return "local"
