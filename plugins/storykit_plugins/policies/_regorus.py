"""Evaluating a Rego module in process with regorus (the ``hobofan-regorus`` package).

Three facts about this binding (0.2.5) shape the code:

- It predates Rego v1. A module without ``import rego.v1`` is read with the old
  grammar, where ``if`` and ``contains`` are ordinary names unless imported from
  ``future.keywords``; the binding then prints a warning and evaluates something
  else than was written. ``deny if { startswith(input.files[_], "x/") }`` becomes a
  ``deny`` that is ``true`` for every input. With ``import rego.v1`` it parses
  modules as OPA 1.x does (``if`` required, old ``deny[msg] { … }`` rejected), so
  that import is required here, and checked in the parsed module, not just the text.
- Its ``Engine`` may only be used on the thread that created it (a Rust panic
  otherwise), so every evaluation builds its own engine, in the worker thread
  that runs it. Parsing a module takes about 0.1 ms.
- It holds the GIL while it evaluates, so a slow policy delays the server however
  it is called; the REST mode runs policies out of process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Protocol, cast

import hobofan_regorus  # type: ignore[import-untyped]  # no stubs; typed by _Engine below

from storykit.errors import BackendError, Invalid

__all__ = [
    "MODULE_FILE",
    "NEEDS_V1",
    "check_module",
    "evaluate",
    "parse",
    "reason",
    "require_rego_v1",
]

MODULE_FILE = "storykit.rego"
_IMPORT_V1 = re.compile(r"^[ \t]*import[ \t]+rego\.v1[ \t]*(?:#.*)?$", re.MULTILINE)
_LOCATION = re.compile(r"-->\s*[^:\n]*:(\d+):(\d+)")
_ERROR = re.compile(r"^error:\s*(.*)$", re.MULTILINE)
NEEDS_V1 = (
    "the Rego module must contain the line `import rego.v1`: without it the in-process"
    " engine reads `if` and `contains` as plain names and silently evaluates a different"
    " policy (write Rego v1 syntax, as OPA 1.x expects)"
)


class _Engine(Protocol):
    def set_gather_prints(self, b: bool) -> None: ...
    def add_policy(self, path: str, rego: str) -> str: ...
    def get_packages(self) -> list[str]: ...
    def get_ast_as_json(self) -> str: ...
    def set_input_json(self, input: str) -> None: ...
    def eval_query_as_json(self, query: str) -> str: ...


def require_rego_v1(rego: str) -> None:
    """Refuse a module without ``import rego.v1`` before regorus ever reads it."""
    if not _IMPORT_V1.search(rego):
        raise Invalid(NEEDS_V1)


def parse(rego: str) -> _Engine:
    """An engine holding ``rego``, or :class:`Invalid` with the parser's reason."""
    require_rego_v1(rego)
    engine = cast(_Engine, hobofan_regorus.Engine())
    engine.set_gather_prints(True)  # print() in a policy must not write to the server's stderr
    try:
        engine.add_policy(MODULE_FILE, rego)
    except Exception as exc:
        raise Invalid(f"the Rego module does not parse: {reason(exc)}") from None
    # The text check above can be fooled (the line inside a raw string); the parse cannot.
    if not _imports_rego_v1(json.loads(engine.get_ast_as_json())):
        raise Invalid(NEEDS_V1)
    return engine


def check_module(rego: str, package: str, sample_input: Mapping[str, Any]) -> None:
    """Parse ``rego`` and evaluate it once on ``sample_input``; :class:`Invalid` says what fails.

    regorus reports some mistakes (an unsafe variable, an unknown function) only
    when it evaluates, so a trial run catches them when the policy is saved. Like
    :func:`evaluate`, it raises only once no frame holds the engine.
    """
    problem = _module_problem(rego, package, sample_input)
    if problem is not None:
        raise Invalid(problem)


def _module_problem(rego: str, package: str, sample_input: Mapping[str, Any]) -> str | None:
    try:
        engine = parse(rego)
    except Invalid as exc:
        return exc.detail
    declared = engine.get_packages()
    if f"data.{package}" not in declared:
        found = ", ".join(p.removeprefix("data.") for p in declared) or "none"
        return (
            f'the Rego module declares package {found}, but "package" is {package!r};'
            " make them the same"
        )
    try:
        _query(engine, package, sample_input)
    except BackendError as exc:
        return f"the Rego module fails on an empty suggestion: {exc.detail}"
    return None


def evaluate(rego: str, package: str, input: Mapping[str, Any]) -> dict[str, Any]:
    """The value of ``data.<package>`` for ``input`` (``{}`` when undefined).

    Meant for a worker thread. An engine must also be *dropped* on its own thread, so
    no exception that leaves here may hold it in its traceback: failures are turned
    into a message first, and raised only once the frames holding the engine are gone.
    """
    try:
        return _evaluate(rego, package, input)
    except (Invalid, BackendError) as exc:
        failure = exc.detail
    raise BackendError(failure)


def _evaluate(rego: str, package: str, input: Mapping[str, Any]) -> dict[str, Any]:
    try:
        engine = parse(rego)
    except Invalid as exc:
        raise BackendError(f"the stored Rego module is not usable: {exc.detail}") from None
    return _query(engine, package, input)


def _query(engine: _Engine, package: str, input: Mapping[str, Any]) -> dict[str, Any]:
    try:
        engine.set_input_json(json.dumps(input))
        answer = json.loads(engine.eval_query_as_json(f"data.{package}"))
    except Exception as exc:
        raise BackendError(f"evaluating data.{package} failed: {reason(exc)}") from None
    except BaseException as exc:
        # A Rust panic arrives as pyo3's PanicException, a BaseException: contain it.
        if type(exc).__name__ != "PanicException":
            raise
        raise BackendError(f"the Rego engine crashed evaluating data.{package}: {exc}") from None
    results = answer.get("result") or []
    if not results:
        return {}
    value = results[0]["expressions"][0]["value"]
    if not isinstance(value, dict):
        raise BackendError(f"data.{package} is {type(value).__name__}, not an object of rules")
    return cast(dict[str, Any], value)


def _imports_rego_v1(modules: Any) -> bool:
    """Whether every parsed module's imports include ``rego.v1`` (regorus's AST JSON)."""
    if not isinstance(modules, list) or not modules:
        return False
    for module in modules:
        imports = module.get("ast", {}).get("imports", []) if isinstance(module, dict) else []
        if not any(_is_rego_v1(imp.get("refr")) for imp in imports if isinstance(imp, dict)):
            return False
    return True


def _is_rego_v1(refr: Any) -> bool:
    # {"RefDot": {"refr": {"Var": [span, "rego"]}, "field": [span, "v1"]}}
    dot = refr.get("RefDot") if isinstance(refr, dict) else None
    if not isinstance(dot, dict):
        return False
    var = dot.get("refr", {}).get("Var") if isinstance(dot.get("refr"), dict) else None
    field = dot.get("field")
    return (
        isinstance(var, list)
        and var[-1:] == ["rego"]
        and isinstance(field, list)
        and field[-1:] == ["v1"]
    )


def reason(exc: BaseException) -> str:
    """regorus's error as one line: ``line 3, column 10: expecting `}` ...``."""
    text = str(exc).split("Stack backtrace:", 1)[0]
    message = _ERROR.search(text)
    where = _LOCATION.search(text)
    if message is None:
        return " ".join(text.split()) or type(exc).__name__
    detail = message[1].strip()
    return f"line {where[1]}, column {where[2]}: {detail}" if where else detail
