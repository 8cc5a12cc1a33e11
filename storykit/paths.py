"""Where storykit keeps its files.

The data directory is never inside the user's working tree: by default it is a
per-repository folder in the user's data directory, named after the repository
and a short hash of its absolute path so two checkouts never share state.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["default_data_dir", "find_repo_root", "resolve_data_dir"]


def _user_data_home(environ: Mapping[str, str]) -> Path:
    xdg = environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg)
    return Path.home() / ".local" / "share"


def default_data_dir(
    repo_path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The per-repository data directory for ``repo_path`` (default: the repository the
    current directory is in, so every folder of one checkout shares one data directory)."""
    if repo_path:
        repo = Path(repo_path).resolve()
    else:
        here = Path(os.getcwd()).resolve()
        repo = find_repo_root(here) or here
    digest = hashlib.sha256(str(repo).encode()).hexdigest()[:12]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in repo.name) or "root"
    return (
        _user_data_home(os.environ if environ is None else environ)
        / "storykit"
        / "repos"
        / f"{name}-{digest}"
    )


def resolve_data_dir(
    explicit: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """``explicit``, else ``STORYKIT_DATA_DIR``, else the default for ``REPO_PATH`` or the cwd."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit).expanduser().resolve()
    if env.get("STORYKIT_DATA_DIR"):
        return Path(env["STORYKIT_DATA_DIR"]).expanduser().resolve()
    return default_data_dir(env.get("REPO_PATH") or None, env)


def find_repo_root(path: str | os.PathLike[str]) -> Path | None:
    """The git working tree ``path`` is in (the nearest folder with a ``.git``), or None."""
    here = Path(path).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None
