"""Generate the docs that must never drift from the code.

``python -m storykit.docgen --write`` rewrites them; ``--check`` fails (exit 1)
when a committed file differs from what the code says, which CI runs.
Generators register themselves in :data:`GENERATORS` (path → function).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from storykit import backends, hookspecs

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
        "<!-- Generated from storykit/hookspecs.py and storykit/backends.py by"
        " `make docs`; do not edit by hand. -->\n",
        inspect.cleandoc(hookspecs.__doc__ or "") + "\n",
        "Implement a hook with `from storykit.hookspecs import hookimpl`. An implementation"
        " may accept any subset of the arguments, by name.\n",
    ]
    for name, fn in sorted(_hooks(), key=lambda item: _order(item[0])):
        signature = str(inspect.signature(fn)).replace("'", "")
        out.append(f"## `{name}`\n\n```python\n{name}{signature}\n```\n")
        out.append(inspect.cleandoc(fn.__doc__ or "") + "\n")
    out.append("# Backend protocols\n")
    out.append(
        "The objects handed to `register`. Each is a `typing.Protocol`: any object with"
        " these attributes and methods fits.\n"
    )
    for name in backends.__all__:
        obj = getattr(backends, name)
        if not inspect.isclass(obj):
            continue
        out.append(f"## `{name}`\n\n{inspect.cleandoc(obj.__doc__ or '')}\n")
        for attr, member in obj.__dict__.items():
            if attr.startswith("_"):
                continue
            if inspect.isfunction(member):
                sig = str(inspect.signature(member)).replace("'", "")
                prefix = "async " if inspect.iscoroutinefunction(member) else ""
                doc = inspect.cleandoc(member.__doc__ or "")
                out.append(f"- `{prefix}{attr}{sig}`" + (f": {doc}" if doc else "") + "\n")
        fields = getattr(obj, "__dataclass_fields__", None)
        if fields:
            out.append("Fields: " + ", ".join(f"`{f}`" for f in fields) + "\n")
        elif getattr(obj, "__annotations__", None):
            ann = obj.__annotations__
            out.append("Attributes: " + ", ".join(f"`{a}: {t}`" for a, t in ann.items()) + "\n")
    return "\n".join(out).rstrip() + "\n"


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
