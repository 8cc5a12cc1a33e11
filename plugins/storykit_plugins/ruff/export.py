"""Committed files, exported: which files of a commit ruff reads, and writing them into a
throwaway folder off the event loop. Nothing here touches the working tree or the index."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath

import anyio
import anyio.to_thread

from storykit.errors import BackendError, Invalid
from storykit.gitdiff import plain_path
from storykit_plugins._git import TreeEntry, resolve_commit

__all__ = [
    "CONFIG_NAMES",
    "PY_SUFFIXES",
    "REGULAR",
    "Scratch",
    "export",
    "head",
    "is_config",
    "python_files",
    "strip_prefix",
    "write_files",
]

PY_SUFFIXES = (".py", ".pyi")
CONFIG_NAMES = frozenset({"ruff.toml", ".ruff.toml", "pyproject.toml"})
REGULAR = frozenset({"100644", "100755"})  # not symlinks (120000) or submodules


class Scratch:
    """A temporary folder for an export, created and removed off the event loop."""

    def __init__(self, parent: Path | None, size: int) -> None:
        self.parent = parent
        self.size = size
        """Bytes that will be written: a memory-backed folder is used only with room to spare."""

    async def __aenter__(self) -> Path:
        self.path = Path(await anyio.to_thread.run_sync(self._make))
        return self.path

    def _make(self) -> str:
        parent = self.parent or _memory_folder(self.size)
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkdtemp("", "storykit-ruff-", parent)

    async def __aexit__(self, *exc: object) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(shutil.rmtree, self.path, True)


def _memory_folder(size: int) -> Path | None:
    """``/dev/shm`` when it is there with room to spare: creating thousands of small
    files is much cheaper in memory than on many disks, and the export is thrown away."""
    shm = Path("/dev/shm")  # noqa: S108 - a fresh private folder is made inside it
    try:
        usable = shm.is_dir() and os.access(shm, os.W_OK | os.X_OK)
        if usable and shutil.disk_usage(shm).free > 2 * size + (64 << 20):
            return shm
    except OSError:
        pass
    return None


async def head(repo: Path) -> str:
    """The commit ``HEAD`` names; a repository without commits is a clear error."""
    try:
        return await resolve_commit(repo, "HEAD")
    except Invalid:
        raise BackendError(f"{repo} has no commits yet; ruff reads committed files") from None


def python_files(
    entries: Sequence[TreeEntry], paths: Sequence[str], commit: str
) -> list[TreeEntry]:
    """The regular Python files among ``entries`` under ``paths`` (all of them for none or
    ``.``); a path that names nothing in the commit is :class:`Invalid`."""
    prefixes = [p.strip("/") for p in paths if p.strip("/") not in ("", ".")]
    if len(prefixes) < len(paths):
        prefixes = []  # "." asks for the whole repository

    def under(path: str, prefix: str) -> bool:
        return path == prefix or path.startswith(prefix + "/")

    for prefix in prefixes:
        if not any(under(e.path, prefix) for e in entries):
            raise Invalid(
                f"{prefix!r} is not in HEAD ({commit[:12]}); the ruff source reads committed files"
            )
    return [
        e
        for e in entries
        if e.mode in REGULAR
        and e.path.endswith(PY_SUFFIXES)
        and plain_path(e.path)
        and (not prefixes or any(under(e.path, p) for p in prefixes))
    ]


def is_config(entry: TreeEntry) -> bool:
    """Whether ``entry`` is a file ruff may read its configuration from."""
    return entry.mode in REGULAR and PurePosixPath(entry.path).name in CONFIG_NAMES


def strip_prefix(name: str) -> str:
    return name[2:] if name[:2] in ("a/", "b/") else name


async def export(
    root: Path, entries: Sequence[TreeEntry], blobs: Mapping[str, bytes]
) -> dict[str, str]:
    """:func:`write_files` in a worker thread."""
    return await anyio.to_thread.run_sync(write_files, root, entries, blobs)


def write_files(
    root: Path, entries: Iterable[TreeEntry], blobs: Mapping[str, bytes]
) -> dict[str, str]:
    """Write the text files among ``entries``; binary and non-UTF-8 files are skipped.
    Returns each written file's text by path."""
    texts: dict[str, str] = {}
    root.mkdir(parents=True, exist_ok=True)
    made: set[Path] = {root}
    for entry in entries:
        data = blobs.get(entry.oid)
        if data is None or b"\0" in data:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        target = root / entry.path
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        target.write_bytes(data)
        texts[entry.path] = text
    return texts
