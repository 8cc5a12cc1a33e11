"""Generate the docs that must never drift from the code.

``python -m storykit.docgen --write`` rewrites them; ``--check`` fails (exit 1)
when a committed file differs from what the code says, which CI runs.
Generators register themselves in :data:`GENERATORS` (path → function).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import inspect
import itertools
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from storykit import backends, hookspecs, models

__all__ = ["GENERATORS", "hook_reference", "main"]

ROOT = Path(__file__).resolve().parent.parent


def _hooks() -> list[tuple[str, Callable[..., object]]]:
    return [
        (name, fn)
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("storykit_")
    ]


def hook_reference() -> str:
    """``docs/plugins.md``'s hook reference, from the hookspecs' docstrings."""
    out = [
        "# Hook reference\n",
        "<!-- Generated from storykit/hookspecs.py, storykit/backends.py and"
        " storykit/models.py by `make docs`; do not edit by hand. -->\n",
        _md(hookspecs.__doc__),
        "Implement a hook with `from storykit import hookimpl` (also"
        " `storykit.hookspecs.hookimpl`). An implementation may accept any subset of the"
        " arguments, by name.\n",
    ]
    for name, fn in sorted(_hooks(), key=lambda item: _order(item[0])):
        signature = str(inspect.signature(fn)).replace("'", "")
        out.append(f"## `{name}`\n\n```python\n{name}{signature}\n```\n")
        out.append(_md(fn.__doc__))
    out.append("# Backend protocols and what they exchange\n")
    out.append(
        "The objects handed to `register`, and the values they take and return. A"
        " protocol is a `typing.Protocol`: any object with these attributes and methods"
        " fits. The values are frozen dataclasses; build them with keyword arguments.\n"
    )
    for name in backends.__all__:
        out.append(_describe(backends, name))
    out.append("# Data types\n")
    out.append(
        "What the core hands to plugins (a planner's suggestions, a PR backend's variant,"
        " an observer's event) and what they return. Frozen dataclasses and string"
        " enums from `storykit.models`; the JSON the API returns has the same field"
        " names.\n"
    )
    for name in _MODEL_ORDER:
        out.append(_describe(models, name))
    return "\n".join(out).rstrip() + "\n"


_MODEL_ORDER = (
    "Suggestion",
    "Review",
    "Finding",
    "PolicyDecision",
    "Plan",
    "Variant",
    "Conflict",
    "PRResult",
    "Event",
    "Status",
    "Risk",
    "Outcome",
    "Action",
)


def _describe(module: ModuleType, name: str) -> str:
    """One type's section: how to import it, its docstring, its fields or members."""
    obj = getattr(module, name)
    if not inspect.isclass(obj):  # a type alias, documented by its own docstring below it
        doc = _attribute_docs(module).get(name, "")
        return f"## `{name}`\n\n`from {module.__name__} import {name}`\n\n{_md(doc)}"
    out = [f"## `{name}`\n\n`from {module.__name__} import {name}`\n\n{_md(obj.__doc__)}"]
    if issubclass(obj, enum.Enum):
        out.append("Values: " + ", ".join(f"`{m.value}`" for m in obj) + "\n")
        return "\n".join(out)
    for attr, member in obj.__dict__.items():
        if attr.startswith("_") or not inspect.isfunction(member):
            continue
        if dataclasses.is_dataclass(obj) and attr in ("from_dict", "to_dict"):
            continue
        sig = str(inspect.signature(member)).replace("'", "")
        prefix = "async " if inspect.iscoroutinefunction(member) else ""
        doc = " ".join(_md(member.__doc__).split())
        out.append(f"- `{prefix}{attr}{sig}`" + (f": {doc}" if doc else "") + "\n")
    docs = _attribute_docs(obj)
    if dataclasses.is_dataclass(obj):
        rows = ["| field | type | default | |", "| --- | --- | --- | --- |"]
        for f in dataclasses.fields(obj):
            meaning = " ".join(_md(docs.get(f.name, "")).split()).replace("|", "\\|")
            rows.append(f"| `{f.name}` | `{_type(f.type)}` | {_default(f)} | {meaning} |")
        out.append("\n".join(rows) + "\n")
    else:
        # Annotated attributes, then read-only ones (a protocol's properties).
        ann = dict(getattr(obj, "__annotations__", {}))
        for attr, member in obj.__dict__.items():
            if isinstance(member, property) and not attr.startswith("_"):
                ann[attr] = getattr(member.fget, "__annotations__", {}).get("return", "")
        if ann:
            out.append("Attributes: " + ", ".join(f"`{a}: {t}`" for a, t in ann.items()) + "\n")
    return "\n".join(out)


def _type(annotation: object) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return str(text).replace("|", "\\|")


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default.value if isinstance(f.default, enum.Enum) else f.default
        return f"`{value!r}`"
    if f.default_factory is not dataclasses.MISSING:
        factory = f.default_factory
        return "now" if getattr(factory, "__name__", "") == "utcnow" else f"`{factory()!r}`"
    return "required"


def _attribute_docs(owner: object) -> dict[str, str]:
    """The docstrings written under a class's fields (or a module's names), by name."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(owner)))  # type: ignore[arg-type]
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if isinstance(owner, type) else tree.body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        target = None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target = node.target.id
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            target = node.targets[0].id
        if (
            target is not None
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[target] = inspect.cleandoc(following.value.value)
    return docs


_ROLE = re.compile(r":[a-z]+:`(~?)([^`<]+?)`")


def _md(docstring: str | None) -> str:
    """A docstring in the code's reST style as Markdown: ``literals`` in single
    backticks, ``:class:`~a.B``` roles as `B`, ``Example::`` blocks fenced as Python."""
    text = inspect.cleandoc(docstring or "")
    text = _ROLE.sub(lambda m: f"``{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}``", text)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::"):
            out.append(line)
            i += 1
            continue
        out.append(line.rstrip()[:-1])  # "Example::" -> "Example:"
        i += 1
        block: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
            block.append(lines[i])
            i += 1
        code = textwrap.dedent("\n".join(block)).strip("\n")
        out.extend(["", "```python", code, "```", ""])
    return "\n".join(out).strip() + "\n"


def _order(name: str) -> tuple[int, str]:
    order = list(vars(hookspecs))
    return (order.index(name) if name in order else len(order), name)


GENERATORS: dict[str, Callable[[], str]] = {"docs/plugins.md": hook_reference}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storykit.docgen", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated files")
    mode.add_argument("--check", action="store_true", help="fail if any file is out of date")
    args = parser.parse_args(argv)
    _load_extra_generators()
    stale = []
    for rel, generate in GENERATORS.items():
        path = ROOT / rel
        text = generate()
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {rel}")
        elif not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(rel)
    if stale:
        print(f"out of date: {', '.join(stale)}; run `make docs` and commit", file=sys.stderr)
        return 1
    return 0


def _load_extra_generators() -> None:
    """Hosts add their own generated docs (CLI help, OpenAPI) through this entry point group."""
    import importlib.metadata

    for ep in importlib.metadata.entry_points(group="storykit.docgen"):
        GENERATORS.update(ep.load()())


if __name__ == "__main__":
    raise SystemExit(main())
