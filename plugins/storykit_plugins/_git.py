"""Running git for the first-party plugins, and reading committed files.

Every call goes through :func:`run_git` so that the environment is the same
everywhere: variables that would point git at another repository, index or
identity are removed (storykit may be started from inside a git hook, where
``GIT_DIR`` and ``GIT_INDEX_FILE`` are set), and git never prompts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import anyio

from storykit.errors import BackendError, Invalid

__all__ = [
    "GitResult",
    "TreeEntry",
    "check_branch_name",
    "git_env",
    "git_ok",
    "ls_tree",
    "object_format",
    "read_blobs",
    "repo_root",
    "resolve_commit",
    "run_git",
    "summarize",
]

# Variables that redirect git to another repository, index or identity.
_SCRUBBED = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
)
# git prints these on a fallback that then succeeds; they only confuse an error summary.
_NOISE = ("hint:", "Falling back to", "error: repository lacks the necessary blob")


@dataclasses.dataclass(frozen=True, slots=True)
class GitResult:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclasses.dataclass(frozen=True, slots=True)
class TreeEntry:
    """One blob of a commit's tree (``git ls-tree -r``)."""

    mode: str
    oid: str
    path: str


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["GIT_TERMINAL_PROMPT"] = "0"  # a push must fail, not wait for a password
    env["LC_ALL"] = "C"  # stable messages in error summaries
    env.update(extra or {})
    return env


async def run_git(
    args: Sequence[str],
    *,
    cwd: Path,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> GitResult:
    """Run ``git *args`` in ``cwd`` without raising on a non-zero exit."""
    try:
        done = await anyio.run_process(
            ["git", *args], cwd=cwd, input=input, env=git_env(env), check=False
        )
    except FileNotFoundError:
        if not await anyio.Path(cwd).is_dir():
            raise BackendError(f"cannot run git in {cwd}: no such directory") from None
        raise BackendError("git is not installed or not on PATH") from None
    return GitResult(done.returncode, done.stdout, done.stderr)


def summarize(stderr: bytes, *, limit: int = 6) -> str:
    """The first meaningful lines of git's error output, on one line."""
    lines = [
        line.strip()
        for line in stderr.decode("utf-8", "replace").splitlines()
        if line.strip() and not line.strip().startswith(_NOISE)
    ]
    text = "; ".join(lines[:limit])
    if len(lines) > limit:
        text += f"; … ({len(lines) - limit} more lines)"
    return text or "no error output"


async def git_ok(
    args: Sequence[str],
    *,
    cwd: Path,
    what: str,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """Run git and return stdout, or raise :class:`BackendError` saying ``what`` failed."""
    result = await run_git(args, cwd=cwd, input=input, env=env)
    if not result.ok:
        raise BackendError(f"{what} failed: {summarize(result.stderr)}")
    return result.stdout


async def repo_root(path: Path) -> Path:
    """The top of the working tree that contains ``path``."""
    if not await anyio.Path(path).is_dir():
        raise BackendError(f"{path} is not a directory")
    result = await run_git(["rev-parse", "--show-toplevel"], cwd=path)
    if not result.ok:
        raise BackendError(f"{path} is not a git repository: {summarize(result.stderr)}")
    return Path(result.stdout.decode().strip())


async def resolve_commit(repo: Path, ref: str) -> str:
    """The full object id of the commit ``ref`` names, or :class:`Invalid`."""
    if not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise Invalid(f"bad git revision {ref!r}")
    result = await run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], cwd=repo
    )
    if not result.ok:
        raise Invalid(f"{ref!r} does not name a commit in {repo}")
    return result.stdout.decode().strip()


async def object_format(repo: Path) -> str:
    """``sha1`` or ``sha256``: the hash the repository names objects with."""
    result = await run_git(["rev-parse", "--show-object-format"], cwd=repo)
    return result.stdout.decode().strip() if result.ok else "sha1"


async def ls_tree(repo: Path, commit: str) -> list[TreeEntry]:
    """Every blob (not submodules) in ``commit``'s tree, with repository-relative paths."""
    out = await git_ok(["ls-tree", "-r", "-z", "--full-tree", commit], cwd=repo, what="git ls-tree")
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, oid = meta.decode().split()
        if kind != "blob":
            continue
        try:
            path = raw_path.decode("utf-8")
        except UnicodeDecodeError:
            continue  # a name we could not write into a diff header anyway
        entries.append(TreeEntry(mode=mode, oid=oid, path=path))
    return entries


async def read_blobs(repo: Path, oids: Iterable[str]) -> dict[str, bytes]:
    """The contents of many blobs, from a few ``git cat-file --batch`` processes at once.

    Inflating objects is single-threaded CPU work in git; large sets are split so
    that every core helps.
    """
    wanted = list(dict.fromkeys(oids))
    workers = max(1, min(os.cpu_count() or 1, 4, len(wanted) // _BLOBS_PER_WORKER))
    chunks = [wanted[i::workers] for i in range(workers)]
    found: dict[str, bytes] = {}

    async def read(chunk: list[str]) -> None:
        found.update(await _read_blob_batch(repo, chunk))

    async with anyio.create_task_group() as tg:
        for chunk in chunks:
            if chunk:
                tg.start_soon(read, chunk)
    return found


_BLOBS_PER_WORKER = 200


async def _read_blob_batch(repo: Path, wanted: list[str]) -> dict[str, bytes]:
    out = await git_ok(
        ["cat-file", "--batch", "--buffer"],  # --buffer: no flush per object
        cwd=repo,
        input="".join(f"{oid}\n" for oid in wanted).encode(),
        what="git cat-file",
    )
    blobs: dict[str, bytes] = {}
    pos = 0
    view = memoryview(out)
    for oid in wanted:
        eol = out.index(b"\n", pos)
        header = out[pos:eol].split()
        pos = eol + 1
        if len(header) != 3:  # "<oid> missing"
            continue
        size = int(header[2])
        blobs[oid] = bytes(view[pos : pos + size])
        pos += size + 1  # the content is followed by a newline
    return blobs


async def check_branch_name(repo: Path, branch: str) -> str:
    """``branch`` if git accepts it as a new branch name, else :class:`Invalid`."""
    if not branch or branch.startswith("-") or "@{" in branch:
        raise Invalid(f"{branch!r} is not a valid branch name")
    result = await run_git(["check-ref-format", "--branch", branch], cwd=repo)
    if not result.ok or result.stdout.decode().strip() != branch:
        raise Invalid(f"{branch!r} is not a valid branch name (git check-ref-format)")
    return branch
