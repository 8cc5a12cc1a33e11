"""The commits diffs are made against, read once: the ``ruff`` policy's caches.

A commit never changes, so its tree (and which ruff configuration it holds) is read
with one ``git ls-tree`` the first time a diff names it, and file contents are kept by
object id; both are bounded (least recently used go first). What moves is a ref:
``HEAD`` is read from the repository's files at every check, as git itself reads it
(``HEAD``, then the loose ref or ``packed-refs``), so a commit made meanwhile counts at
once. Anything unusual there (another ref storage, a ref that is not a plain branch)
is left to ``git rev-parse``, as is every other name.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from storykit.errors import BackendError
from storykit_plugins._git import TreeEntry, git_ok, ls_tree, read_blobs, repo_root, resolve_commit
from storykit_plugins.ruff import export

__all__ = ["Base", "Bases", "Repo"]

_OID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Repo:
    root: Path
    git_dir: Path
    common_dir: Path


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Base:
    """One commit: its files by path and the ruff configuration files among them."""

    commit: str
    tree: Mapping[str, TreeEntry]
    configs: tuple[TreeEntry, ...]


class Bases:
    def __init__(self, *, commits: int = 8, blob_bytes: int = 64 << 20) -> None:
        self.commits = commits
        self.blob_bytes = blob_bytes
        self._repos: dict[Path, Repo] = {}
        self._bases: collections.OrderedDict[tuple[Path, str], Base] = collections.OrderedDict()
        self._blobs: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._blob_total = 0

    async def repo(self, path: Path) -> Repo:
        """The repository ``path`` is in (:class:`BackendError` if none)."""
        known = self._repos.get(path)
        if known is not None and (known.git_dir / "HEAD").is_file():
            return known
        root = await repo_root(path)  # its errors say what is wrong with the path
        out = await git_ok(
            ["rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir"],
            cwd=root,
            what="git rev-parse",
        )
        git_dir, common_dir = out.decode().split("\n")[:2]
        repo = Repo(root=root, git_dir=Path(git_dir), common_dir=Path(common_dir))
        self._repos[path] = repo
        return repo

    async def resolve(self, repo: Repo, ref: str) -> str:
        """The commit ``ref`` names now (:class:`~storykit.errors.Invalid` if none)."""
        oid = ref if _OID.fullmatch(ref) else _read_head(repo) if ref == "HEAD" else None
        if oid is not None and (repo.root, oid) in self._bases:
            return oid  # a commit this cache read: no need to ask git what it is
        return await resolve_commit(repo.root, oid or ref)

    async def base(self, repo: Repo, commit: str) -> Base:
        key = (repo.root, commit)
        found = self._bases.get(key)
        if found is None:
            entries = await ls_tree(repo.root, commit)
            found = Base(
                commit=commit,
                tree={e.path: e for e in entries},
                configs=tuple(e for e in entries if export.is_config(e)),
            )
            self._bases[key] = found
            while len(self._bases) > self.commits:
                self._bases.popitem(last=False)
        self._bases.move_to_end(key)
        return found

    async def blobs(self, repo: Repo, oids: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(oids))
        missing = [oid for oid in wanted if oid not in self._blobs]
        if missing:
            for oid, content in (await read_blobs(repo.root, missing)).items():
                self._keep(oid, content)
        out: dict[str, bytes] = {}
        for oid in wanted:
            data = self._blobs.get(oid)
            if data is None:
                raise BackendError(f"git cat-file found no object {oid} in {repo.root}")
            self._blobs.move_to_end(oid)
            out[oid] = data
        return out

    def _keep(self, oid: str, data: bytes) -> None:
        self._blobs[oid] = data
        self._blob_total += len(data)
        while self._blob_total > self.blob_bytes and len(self._blobs) > 1:
            _, dropped = self._blobs.popitem(last=False)
            self._blob_total -= len(dropped)


def _read_head(repo: Repo) -> str | None:
    """The object id ``HEAD`` names, read from the files as git reads them, or None when
    they hold anything but a plain branch or a detached commit (git then decides)."""
    try:
        text = (repo.git_dir / "HEAD").read_text("utf-8").strip()
        for _ in range(5):  # a symbolic ref may name another, but not forever
            if _OID.fullmatch(text):
                return text
            if not text.startswith("ref: refs/heads/"):
                return None
            name = text.removeprefix("ref: ")
            loose = repo.common_dir / name
            if loose.is_file():
                text = loose.read_text("utf-8").strip()
                continue
            return _packed(repo.common_dir / "packed-refs", name)
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _packed(path: Path, name: str) -> str | None:
    if not path.is_file():
        return None
    for line in path.read_text("utf-8").splitlines():
        oid, _, ref = line.partition(" ")
        if ref == name and _OID.fullmatch(oid):
            return oid
    return None
