"""Suggestion source ``ruff``: ruff's safe automatic fixes, one suggestion per file and rule.

ruff runs on the files as committed at ``HEAD``, exported into a temporary
folder, so every suggestion is a diff against ``HEAD`` that applies to a clean
checkout whatever state the user's working tree is in. ruff runs once over all
files; its JSON output carries each fix's edits, which are applied here per
file and rule (the same order and overlap rules as ``ruff --fix``), so the cost
is one ruff run plus writing the diffs.

Configuration: the repository's own ruff configuration (``ruff.toml``,
``.ruff.toml`` or a ``pyproject.toml`` with ``[tool.ruff]``, as committed) if it
has one; otherwise ruff's defaults with ``STORYKIT_RUFF_SELECT`` (default
``E,F,W,I,UP,B``) and the target version read from ``requires-python``.

Its pre-review of diffs that agents submit first checks that the diff applies to
its ``base_ref`` at all, whatever files it touches (``diff:does-not-apply``, a deny:
such a diff can never ship; ``diff:unchecked`` when the repository or the base
cannot be read), then runs ruff on the Python files it changes.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from storykit.backends import Draft, GenerateRequest, Progress, SuggestionSource
from storykit.diffs import parse_diff_async, safe_repo_path
from storykit.errors import BackendError, Invalid
from storykit.gitdiff import (
    Edit,
    Lines,
    apply_edits,
    blob_id,
    file_diff,
    header,
    plain_path,
)
from storykit.hookspecs import hookimpl
from storykit.models import Finding, Outcome
from storykit.settings import Settings
from storykit_plugins._git import (
    TreeEntry,
    ls_tree,
    object_format,
    read_blobs,
    repo_root,
    resolve_commit,
    run_git,
    summarize,
)
from storykit_plugins._git_pr import check_applies

__all__ = ["DEFAULT_SELECT", "RuffSource", "storykit_register_sources"]

DEFAULT_SELECT = ("E", "F", "W", "I", "UP", "B")
PY_SUFFIXES = (".py", ".pyi")
CONFIG_NAMES = frozenset({"ruff.toml", ".ruff.toml", "pyproject.toml"})
RULES_URL = "https://docs.astral.sh/ruff/rules/"
MAX_FINDINGS = 50
_REGULAR = frozenset({"100644", "100755"})  # not symlinks (120000) or submodules
_RUFF_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # ruff's rows end at any of these
_TOOL_RUFF = re.compile(r"^\s*\[\s*tool\.ruff\s*[\].]", re.MULTILINE)
_MIN_PY = re.compile(r">=\s*3\.(\d+)")

Diagnostic = Mapping[str, Any]


def _ruff_command() -> list[str]:
    try:
        return [str(importlib.import_module("ruff").find_ruff_bin())]
    except (ImportError, AttributeError, FileNotFoundError):
        return [sys.executable, "-m", "ruff"]


class RuffSource:
    """Proposes ruff's safe fixes and checks incoming diffs with ruff."""

    name = "ruff"

    def __init__(
        self,
        *,
        select: Sequence[str] = DEFAULT_SELECT,
        ruff: Sequence[str] | None = None,
        scratch_dir: Path | None = None,
    ) -> None:
        self.select = tuple(select)
        self.ruff = list(ruff) if ruff else _ruff_command()
        self.scratch_dir = scratch_dir
        """Where exports go; None: a memory-backed folder if one has room, else the temp dir."""
        self._unfixable: tuple[str, ...] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RuffSource:
        raw = settings.get("STORYKIT_RUFF_SELECT") or ""
        select = tuple(part.strip() for part in raw.split(",") if part.strip())
        scratch = (settings.get("STORYKIT_RUFF_SCRATCH") or "").strip()
        return cls(select=select or DEFAULT_SELECT, scratch_dir=Path(scratch) if scratch else None)

    # -- generate ------------------------------------------------------------
    async def generate(self, request: GenerateRequest) -> list[Draft]:
        report = _Reporter(request.progress)
        paths = tuple(safe_repo_path(p) for p in request.paths)
        repo = await repo_root(request.repo_path)
        commit = await _head(repo)
        algorithm = await object_format(repo)
        entries = await ls_tree(repo, commit)
        files = _python_files(entries, paths, commit)
        configs = [e for e in entries if _is_config(e)]
        await report("export", 0, len(files))
        blobs = await read_blobs(repo, (e.oid for e in [*files, *configs]))
        async with _scratch(self.scratch_dir, blobs) as scratch:
            tree = scratch / "tree"
            texts = await _export(tree, [*files, *configs], blobs)
            config_texts = {e.path: texts.pop(e.path, "") for e in configs}
            sources = {e.path: e for e in files if e.path in texts}
            await report("export", len(sources), len(files))
            if not sources:
                return []
            await report("check", 0, len(sources))
            options = await self._options(config_texts, only_fixable=True)
            diagnostics = await self._check(tree, ["."], options)
            await report("check", len(sources), len(sources))
            context = _Context(commit=commit, algorithm=algorithm, root=tree, report=report)
            return await anyio.to_thread.run_sync(_drafts, diagnostics, texts, sources, context)

    # -- pre-review ------------------------------------------------------------
    async def pre_review(self, repo_path: Path, draft: Draft) -> list[Finding]:
        """First whether the diff applies to its base at all (any file, Python or not:
        a diff that cannot apply can never ship), then ruff on the Python files it changes."""
        try:
            parsed = await parse_diff_async(draft.diff)
        except Invalid:
            return []  # storykit itself refuses diffs that do not parse
        targets = [
            str(pf.path)
            for pf in parsed.patch
            if str(pf.path).endswith(PY_SUFFIXES) and not pf.is_removed_file
        ]
        base = draft.base_ref or "HEAD"
        try:
            repo = await repo_root(repo_path)
            commit = await resolve_commit(repo, base)
            problem = await check_applies(repo, commit, draft.diff, self._work_dir())
        except (BackendError, Invalid) as exc:
            return _unchecked(exc.detail, python=bool(targets))
        if problem is not None:
            return [
                Finding(
                    rule="diff:does-not-apply",
                    message=f"the diff does not apply to {base} ({commit[:12]}): {problem};"
                    f" make it against {base}, or set base_ref to the commit it was made on",
                    severity=Outcome.DENY,
                    policy="ruff",
                )
            ]
        if not targets:
            return []
        entries = await ls_tree(repo, commit)
        touched = {_strip_prefix(str(pf.source_file)) for pf in parsed.patch}
        wanted = [e for e in entries if e.path in touched or _is_config(e)]
        blobs = await read_blobs(repo, (e.oid for e in wanted))
        async with _scratch(self.scratch_dir, blobs) as scratch:
            tree = scratch / "tree"
            texts = await _export(tree, wanted, blobs)
            config_texts = {e.path: texts.get(e.path, "") for e in entries if _is_config(e)}
            patch = scratch / "change.patch"
            await anyio.Path(patch).write_text(draft.diff, encoding="utf-8", newline="")
            # Outside any repository, so git apply works as a plain patch tool on the export.
            applied = await run_git(
                ["apply", "--whitespace=nowarn", str(patch)],
                cwd=tree,
                env={"GIT_CEILING_DIRECTORIES": str(scratch)},
            )
            if not applied.ok:
                # It applies (checked above), but only as a three-way merge, which needs
                # the repository; ruff checks the exported files alone.
                return [
                    _note(
                        "ruff:not-applied",
                        f"ruff did not check this diff: it applies to {base} ({commit[:12]})"
                        f" only by a three-way merge: {summarize(applied.stderr)}",
                    )
                ]
            present = [t for t in targets if await anyio.Path(tree / t).is_file()]
            if not present:
                return []
            options = await self._options(config_texts, only_fixable=False)
            diagnostics = await self._check(tree, present, options)
        return _findings(diagnostics, tree, parsed.added_lines())

    def _work_dir(self) -> Path:
        return self.scratch_dir or Path(tempfile.gettempdir())

    # -- running ruff --------------------------------------------------------
    async def _options(self, configs: Mapping[str, str], *, only_fixable: bool) -> list[str]:
        if any(_configures_ruff(path, text) for path, text in configs.items()):
            return []  # ruff finds the repository's configuration next to the files
        options = ["--isolated", "--select", ",".join(self.select)]
        target = _target_version(configs.get("pyproject.toml", ""))
        if target:
            options += ["--target-version", target]
        # Unfixable rules cannot become suggestions; skipping them makes ruff's output
        # (and its parsing) far smaller. Not when RUF100 may run: it would then report
        # suppression comments for the skipped rules as unused.
        if only_fixable and not any("RUF100".startswith(s) or s == "ALL" for s in self.select):
            unfixable = await self._unfixable_rules()
            if unfixable:
                options += ["--extend-ignore", ",".join(unfixable)]
        return options

    async def _unfixable_rules(self) -> tuple[str, ...]:
        if self._unfixable is None:
            try:
                done = await anyio.run_process(
                    [*self.ruff, "rule", "--all", "--output-format", "json"], check=False
                )
                rules = json.loads(done.stdout) if done.returncode == 0 else []
            except (OSError, ValueError):
                rules = []  # only an optimisation; ``ruff check`` reports a missing ruff
            self._unfixable = tuple(
                r["code"]
                for r in rules
                if r.get("code")
                and r.get("fix_availability") == "None"
                # A removed code may be remapped to a live rule; leave those alone.
                and not any(word in str(r.get("status")) for word in ("Removed", "Deprecated"))
            )
        return self._unfixable

    async def _check(self, root: Path, targets: Sequence[str], options: Sequence[str]) -> list[Any]:
        args = [
            *self.ruff,
            "check",
            "--no-cache",
            "--no-fix",
            "--exit-zero",
            "--force-exclude",
            "--output-format",
            "json",
            *options,
            "--",
            *targets,
        ]
        try:
            done = await anyio.run_process(args, cwd=root, check=False)
        except FileNotFoundError:
            raise BackendError(f"ruff is not installed ({self.ruff[0]} not found)") from None
        if done.returncode != 0:
            raise BackendError(f"ruff check failed: {summarize(done.stderr)}")
        result = json.loads(done.stdout or b"[]")
        return result if isinstance(result, list) else []


# -- exporting committed files --------------------------------------------------
class _scratch:
    """A temporary folder for an export, created and removed off the event loop."""

    def __init__(self, parent: Path | None, blobs: Mapping[str, bytes]) -> None:
        self.parent = parent
        self.size = sum(map(len, blobs.values()))

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


async def _head(repo: Path) -> str:
    try:
        return await resolve_commit(repo, "HEAD")
    except Invalid:
        raise BackendError(f"{repo} has no commits yet; ruff reads committed files") from None


def _python_files(
    entries: Sequence[TreeEntry], paths: Sequence[str], commit: str
) -> list[TreeEntry]:
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
        if e.mode in _REGULAR
        and e.path.endswith(PY_SUFFIXES)
        and plain_path(e.path)
        and (not prefixes or any(under(e.path, p) for p in prefixes))
    ]


def _is_config(entry: TreeEntry) -> bool:
    return entry.mode in _REGULAR and PurePosixPath(entry.path).name in CONFIG_NAMES


def _configures_ruff(path: str, text: str) -> bool:
    return PurePosixPath(path).name != "pyproject.toml" or bool(_TOOL_RUFF.search(text))


def _target_version(pyproject: str) -> str | None:
    try:
        spec = tomllib.loads(pyproject).get("project", {}).get("requires-python", "")
    except tomllib.TOMLDecodeError:
        return None
    match = _MIN_PY.search(spec) if isinstance(spec, str) else None
    return f"py3{match.group(1)}" if match else None


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


async def _export(
    root: Path, entries: Sequence[TreeEntry], blobs: Mapping[str, bytes]
) -> dict[str, str]:
    return await anyio.to_thread.run_sync(_write_files, root, entries, blobs)


def _write_files(
    root: Path, entries: Iterable[TreeEntry], blobs: Mapping[str, bytes]
) -> dict[str, str]:
    """Write the text files among ``entries``; binary and non-UTF-8 files are skipped."""
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


def _strip_prefix(name: str) -> str:
    return name[2:] if name[:2] in ("a/", "b/") else name


# -- turning diagnostics into drafts ------------------------------------------------
class _Reporter:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    async def __call__(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            await self.progress({"source": "ruff", "stage": stage, "done": done, "total": total})

    def from_thread(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            anyio.from_thread.run(self, stage, done, total)


class _Context:
    def __init__(self, *, commit: str, algorithm: str, root: Path, report: _Reporter) -> None:
        self.commit = commit
        self.algorithm = algorithm
        # ruff may name files through the folder as given or with symlinks resolved.
        self.roots = tuple(dict.fromkeys([str(root), str(root.resolve())]))
        self.report = report


def _relative(filename: object, roots: Sequence[str]) -> str | None:
    """The repository path of a file ruff names by its absolute path in the export."""
    if isinstance(filename, str):
        for root in roots:
            prefix = root + os.sep
            if filename.startswith(prefix):
                return filename[len(prefix) :].replace(os.sep, "/")
    return None


def _drafts(
    diagnostics: Sequence[Diagnostic],
    texts: Mapping[str, str],
    sources: Mapping[str, TreeEntry],
    context: _Context,
) -> list[Draft]:
    groups: dict[tuple[str, str], list[Diagnostic]] = {}
    for diag in diagnostics:
        fix = diag.get("fix")
        code = diag.get("code")
        if not code or not isinstance(fix, Mapping) or fix.get("applicability") != "safe":
            continue
        path = _relative(diag.get("filename"), context.roots)
        if path is None or path not in sources:
            continue
        groups.setdefault((path, str(code)), []).append(diag)
    drafts: list[Draft] = []
    total = len(groups)
    step = max(1, total // 20)  # each report is an event: about twenty per run
    lines: dict[str, tuple[Lines, list[int]]] = {}
    for n, ((path, code), diags) in enumerate(sorted(groups.items()), start=1):
        if path not in lines:
            split = Lines(texts[path])
            lines[path] = (split, _ruff_row_starts(split))
        draft = _draft(path, code, diags, lines[path], sources[path], context)
        if draft is not None:
            drafts.append(draft)
        if n % step == 0 or n == total:
            context.report.from_thread("fix", n, total)
    return drafts


def _ruff_row_starts(lines: Lines) -> list[int]:
    if "\r" not in lines.text:
        return lines.starts  # without carriage returns, ruff's rows are git's lines
    return [0, *(m.end() for m in _RUFF_LINE_BREAK.finditer(lines.text))]


def _offset(location: Mapping[str, int], starts: list[int], text: str) -> int:
    # ruff's rows and columns are 1-based and count characters, as Python strings do,
    # but ruff does not count a byte order mark: the first row starts after it.
    row = int(location["row"]) - 1
    if row >= len(starts):
        return len(text)
    bom = 1 if row == 0 and text.startswith("\ufeff") else 0
    return min(starts[row] + bom + int(location["column"]) - 1, len(text))


def _draft(
    path: str,
    code: str,
    diags: list[Diagnostic],
    base: tuple[Lines, list[int]],
    entry: TreeEntry,
    context: _Context,
) -> Draft | None:
    lines, starts = base
    old = lines.text
    fixes: list[tuple[list[Edit], Diagnostic]] = []
    for diag in diags:
        edits = sorted(
            (
                Edit(
                    _offset(e["location"], starts, old),
                    _offset(e["end_location"], starts, old),
                    str(e["content"]),
                )
                for e in diag["fix"]["edits"]
            ),
            key=lambda e: (e.start, e.end),
        )
        if edits and all(a.end <= b.start for a, b in itertools.pairwise(edits)):
            fixes.append((edits, diag))
    fixes.sort(key=lambda f: (f[0][0].start, f[0][-1].end))
    chosen: list[Edit] = []
    applied: set[Edit] = set()
    fixed: list[Diagnostic] = []
    deferred = 0
    last_end = -1
    for edits, diag in fixes:
        if all(e in applied for e in edits):
            fixed.append(diag)  # the same fix serves several diagnostics (one import statement)
        elif edits[0].start <= last_end:
            deferred += 1  # like ruff --fix: an overlapping fix waits for the next run
        else:
            chosen.extend(edits)
            applied.update(edits)
            last_end = max(e.end for e in edits)
            fixed.append(diag)
    new, regions = apply_edits(old, chosen)
    if new == old:
        return None
    post = blob_id(new.encode("utf-8"), context.algorithm)
    diff = header(path, index=f"{entry.oid}..{post} {entry.mode}") + file_diff(lines, new, regions)
    return Draft(
        title=_title(code, path, fixed),
        diff=diff,
        rationale=_rationale(code, fixed, deferred),
        base_ref=context.commit,
        metadata={
            "rule": code,
            "rule_name": str(fixed[0].get("name") or ""),
            "file": path,
            "fixes": len(fixed),
            "lines": sorted({int(d["location"]["row"]) for d in fixed}),
            "commit": context.commit,
        },
    )


def _title(code: str, path: str, fixed: Sequence[Diagnostic]) -> str:
    messages = {str(d.get("message", "")) for d in fixed}
    if len(fixed) == 1 or len(messages) == 1:
        what = messages.pop()
    else:
        fix_messages = {str(d["fix"].get("message") or "") for d in fixed}
        what = fix_messages.pop() if len(fix_messages) == 1 else str(fixed[0].get("name", ""))
    places = f" ({len(fixed)} places)" if len(fixed) > 1 else ""
    return f"ruff {code}: {what or code} in {path}{places}"


def _rationale(code: str, fixed: Sequence[Diagnostic], deferred: int) -> str:
    shown = sorted(fixed, key=lambda d: int(d["location"]["row"]))
    out = [f"Line {d['location']['row']}: {d.get('message', '')}" for d in shown[:20]]
    if len(shown) > 20:
        out.append(f"… and {len(shown) - 20} more")
    name = str(fixed[0].get("name") or "")
    url = str(fixed[0].get("url") or f"{RULES_URL}{name}")
    out.append("")
    out.append(f"ruff rule {code} ({name}), safe automatic fix: {url}")
    if deferred:
        out.append(
            f"{deferred} more place(s) overlap these edits; ruff proposes them again "
            "once this change is in."
        )
    return "\n".join(out)


# -- pre-review findings ---------------------------------------------------------
def _note(rule: str, message: str) -> Finding:
    return Finding(rule=rule, message=message, severity=Outcome.WARN, policy="ruff")


def _unchecked(reason: str, *, python: bool) -> list[Finding]:
    """Warnings for a diff whose base could not be read (no repository, no such commit)."""
    found = [_note("diff:unchecked", f"storykit could not check that the diff applies: {reason}")]
    if python:
        found.append(_note("ruff:skipped", f"ruff did not check this diff: {reason}"))
    return found


def _findings(diagnostics: Sequence[Diagnostic], root: Path, added: Iterable[Any]) -> list[Finding]:
    added_lines: dict[str, set[int]] = {}
    for line in added:
        added_lines.setdefault(line.file, set()).add(line.line)
    roots = tuple(dict.fromkeys([str(root), str(root.resolve())]))
    findings: list[Finding] = []
    extra = 0
    for diag in sorted(diagnostics, key=_position):
        path = _relative(diag.get("filename"), roots)
        rows = added_lines.get(path or "", set())
        first = int(diag["location"]["row"])
        last = int((diag.get("end_location") or diag["location"])["row"])
        # A diagnostic counts when any line it covers was added by this diff.
        if not rows or not any(r in rows for r in range(first, last + 1)):
            continue
        if len(findings) >= MAX_FINDINGS:
            extra += 1
            continue
        code = str(diag.get("code") or "invalid-syntax")
        findings.append(
            Finding(
                rule=f"ruff:{code}",
                message=f"{code} {diag.get('message', '')}",
                severity=Outcome.WARN,
                policy="ruff",
                file=path,
                line=first,
            )
        )
    if extra:
        findings.append(_note("ruff:more", f"{extra} more ruff diagnostics on added lines"))
    return findings


def _position(diag: Diagnostic) -> tuple[str, int, int]:
    loc = diag.get("location") or {"row": 0, "column": 0}
    return (str(diag.get("filename", "")), int(loc["row"]), int(loc["column"]))


@hookimpl
def storykit_register_sources(
    register: Callable[[SuggestionSource], None], settings: Settings
) -> None:
    """Register the ``ruff`` source (ruff ships with storykit, so it is always available)."""
    register(RuffSource.from_settings(settings))
