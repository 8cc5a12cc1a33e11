"""Building a plugin manager and collecting the backends plugins register.

There is no global plugin manager: :func:`get_plugin_manager` builds a fresh one,
so tests and several apps in one process stay independent. First-party plugins
are found through the ``storykit`` entry point group exactly like third-party ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib.metadata
import inspect
import logging
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, Generic, TypeVar

import anyio
import pluggy

from storykit import hookspecs
from storykit.backends import Planner, Policy, PRBackend, Refiner, SuggestionSource
from storykit.errors import PluginError, StorykitError
from storykit.models import utcnow
from storykit.settings import ENTRY_POINT_GROUP, Settings, select_plugins

__all__ = [
    "ENTRY_POINT_GROUP",
    "REGISTRATION_HOOKS",
    "PluginFailure",
    "Registered",
    "Registry",
    "check_hooks",
    "get_plugin_manager",
]

log = logging.getLogger("storykit.plugins")

T = TypeVar("T")
R = TypeVar("R")

#: hook name → (registry attribute, the protocol its backends follow)
REGISTRATION_HOOKS: dict[str, tuple[str, type]] = {
    "storykit_register_sources": ("sources", SuggestionSource),
    "storykit_register_refiners": ("refiners", Refiner),
    "storykit_register_planners": ("planners", Planner),
    "storykit_register_policies": ("policies", Policy),
    "storykit_register_pr_backends": ("pr_backends", PRBackend),
}
#: A pluggy trace line is cut here: an event's data can hold whole diffs.
_TRACE_MAX = 500
# The managers already tracing into our logger, so a second Registry does not double each line.
_tracing: weakref.WeakSet[pluggy.PluginManager] = weakref.WeakSet()


def get_plugin_manager(
    *, load_entrypoints: bool = True, only: Iterable[str] | None = None
) -> pluggy.PluginManager:
    """A fresh plugin manager with storykit's hookspecs.

    ``load_entrypoints`` loads the installed plugins of the ``storykit`` entry point
    group; ``only`` limits them as ``STORYKIT_LOAD_PLUGINS`` does (names to load,
    ``-name`` to leave one out; empty for none). A name no installed plugin has is a
    :class:`~storykit.settings.SettingsError`; unknown hook names in any loaded
    plugin fail here too (``check_pending``).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        installed = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        allowed = None if only is None else select_plugins(only, (ep.name for ep in installed))
        for ep in installed:
            if allowed is not None and ep.name not in allowed:
                continue
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                # Fail closed: a policy plugin that silently did not load would let
                # everything through. Say which plugin, and how to leave it out.
                hint = "leave it out with STORYKIT_LOAD_PLUGINS"
                if isinstance(exc, ModuleNotFoundError) and ep.value.startswith("storykit_"):
                    hint = f"pip install 'storykit[plugins]', or {hint}"  # a first-party one
                raise PluginError(
                    f"cannot import {ep.value}: {type(exc).__name__}: {exc} ({hint})",
                    plugin=ep.name,
                    hook="load",
                ) from exc
            pm.register(plugin, name=ep.name)
    pm.check_pending()
    return pm


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Registered(Generic[T]):
    """A backend and the plugin that registered it (named in errors)."""

    plugin: str
    backend: T

    @property
    def name(self) -> str:
        return str(getattr(self.backend, "name", ""))


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PluginFailure:
    plugin: str
    hook: str
    message: str
    at: datetime


class Registry:
    """The backends every plugin registered, by kind and name, and recent plugin errors."""

    def __init__(self, pm: pluggy.PluginManager, settings: Settings) -> None:
        self.pm = pm
        self.settings = settings
        self.sources: dict[str, Registered[SuggestionSource]] = {}
        self.refiners: dict[str, Registered[Refiner]] = {}
        self.planners: dict[str, Registered[Planner]] = {}
        self.policies: dict[str, Registered[Policy]] = {}
        self.pr_backends: dict[str, Registered[PRBackend]] = {}
        self.failures: deque[PluginFailure] = deque(maxlen=50)
        self.on_failure: Callable[[PluginFailure], None] | None = None
        check_hooks(pm)  # also a manager the caller built: a misspelt hook fails here
        if settings.trace_hooks:
            _trace_into_log(pm)
        for hook_name, (attr, protocol) in REGISTRATION_HOOKS.items():
            self._collect(hook_name, getattr(self, attr), protocol)

    def _collect(self, hook_name: str, into: dict[str, Registered[Any]], protocol: type) -> None:
        for plugin, hook in _each_plugin(self.pm, hook_name):

            def register(backend: Any, _plugin: str = plugin) -> None:
                name = getattr(backend, "name", None)
                if not isinstance(name, str) or not name:
                    raise TypeError(f"{backend!r} has no name")
                if not isinstance(backend, protocol):
                    raise TypeError(f"{name!r} is not a {protocol.__name__}")
                if name in into:
                    raise ValueError(f"{name!r} is already registered by {into[name].plugin!r}")
                into[name] = Registered(plugin=_plugin, backend=backend)

            try:
                with self._timed(plugin, hook_name, "hook registration"):
                    hook(register=register, settings=self.settings)
            except Exception as exc:  # a broken plugin must not take storykit down
                self.record_failure(plugin, hook_name, exc)

    # -- calling plugins -------------------------------------------------------
    def record_failure(self, plugin: str, hook: str, exc: BaseException | str) -> PluginFailure:
        message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        failure = PluginFailure(plugin=plugin, hook=hook, message=message, at=utcnow())
        self.failures.append(failure)
        log.warning("plugin failed", extra={"plugin": plugin, "hook": hook, "error": message})
        if self.on_failure is not None:
            self.on_failure(failure)
        return failure

    async def call(
        self,
        plugin: str,
        hook: str,
        fn: Callable[[], Awaitable[R]],
        *,
        seconds: float | None = None,
    ) -> R:
        """Await ``fn()`` with a timeout; a raise or a timeout becomes :class:`PluginError`."""
        limit = self.settings.hook_timeout if seconds is None else seconds
        try:
            with self._timed(plugin, hook), anyio.fail_after(limit):
                return await fn()
        except TimeoutError:
            self.record_failure(plugin, hook, f"timed out after {limit:g}s")
            raise PluginError(f"timed out after {limit:g}s", plugin=plugin, hook=hook) from None
        except StorykitError as exc:
            # A plugin that raises storykit's own errors (Invalid, Conflict, NotConfigured,
            # BackendError…) has already said what is wrong: keep its status and detail.
            if not isinstance(exc, PluginError):
                self.record_failure(plugin, hook, exc)
            raise
        except Exception as exc:
            self.record_failure(plugin, hook, exc)
            raise PluginError(f"{type(exc).__name__}: {exc}", plugin=plugin, hook=hook) from exc

    @contextlib.contextmanager
    def _timed(self, plugin: str, hook: str, what: str = "hook call") -> Iterator[None]:
        """With ``STORYKIT_TRACE_HOOKS``, log ``<what> <plugin> <hook> <ms> ms`` when it ends.

        ``hook call`` is a backend method or an observer; ``hook registration`` a
        registration hook, once per plugin at set-up.
        """
        if not self.settings.trace_hooks:
            yield
            return
        started = time.perf_counter()
        try:
            yield
        finally:
            ms = (time.perf_counter() - started) * 1e3
            # The fields in the message too: a plain handler (the CLI's) prints only it.
            log.info(
                "%s %s %s %.1f ms",
                what,
                plugin,
                hook,
                ms,
                extra={"plugin": plugin, "hook": hook, "ms": ms},
            )

    def observers(self) -> list[str]:
        """The plugins that implement ``storykit_on_event``, in the order they run."""
        return [plugin for plugin, _ in _each_plugin(self.pm, "storykit_on_event")]

    async def notify(self, event: Any, *, only: str | None = None) -> None:
        """Run every ``storykit_on_event`` implementation (or plugin ``only``'s);
        failures are recorded, not raised."""
        for plugin, hook in _each_plugin(self.pm, "storykit_on_event"):
            if only is not None and plugin != only:
                continue

            async def run(_hook: pluggy.HookCaller = hook) -> None:
                for result in _hook(event=event):
                    if inspect.isawaitable(result):
                        await result

            with contextlib.suppress(PluginError):  # call() recorded it
                await self.call(plugin, "storykit_on_event", run)

    def describe(self) -> list[dict[str, Any]]:
        """Each loaded plugin, the hooks it implements and the backends it registered."""
        backends: dict[str, list[dict[str, str]]] = {}
        for _, (attr, _protocol) in REGISTRATION_HOOKS.items():
            for name, reg in getattr(self, attr).items():
                backends.setdefault(reg.plugin, []).append({"kind": attr, "name": name})
        dists = {
            ep.name: ep.dist for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        }
        out = []
        for name, plugin in sorted(self.pm.list_name_plugin(), key=lambda np: str(np[0])):
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or ())
            dist = dists.get(str(name))
            out.append(
                {
                    "name": name,
                    "hooks": hooks,
                    "backends": backends.get(str(name), []),
                    "package": dist.name if dist else None,
                    "version": dist.version if dist else None,
                }
            )
        return out


# -- calling hooks through pluggy ------------------------------------------------------
def _each_plugin(
    pm: pluggy.PluginManager, hook_name: str
) -> Iterator[tuple[str, pluggy.HookCaller]]:
    """Each plugin implementing ``hook_name``, in pluggy's order, with a caller for it alone.

    pluggy calls implementations last-registered first, ``tryfirst`` ones before and
    ``trylast`` ones after the rest (it walks ``get_hookimpls()`` from the end). Calling
    each plugin through its own subset of the hook keeps that order, goes through
    pluggy (so its tracing and hook-call monitoring see every call, wrappers still
    wrap) and lets one plugin fail without the others being skipped.
    """
    impls = [
        impl
        for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls())
        if not (impl.wrapper or impl.hookwrapper)
    ]
    for name in dict.fromkeys(impl.plugin_name for impl in impls):
        others = [impl.plugin for impl in impls if impl.plugin_name != name]
        yield name, pm.subset_hook_caller(hook_name, remove_plugins=others)


def check_hooks(pm: pluggy.PluginManager) -> None:
    """``pm.check_pending()``, with an unknown hook reported as a :class:`PluginError`."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        unknown = [h.name for h in pm.get_hookcallers(exc.plugin) or () if not h.has_spec()]
        hook = unknown[0] if unknown else "check_pending"
        known = [n for n, h in vars(pm.hook).items() if not n.startswith("_") and h.has_spec()]
        close = difflib.get_close_matches(hook, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise PluginError(
            f"{hook} is not a storykit hook{hint}; fix its name, mark it"
            " @hookimpl(optionalhook=True), or leave the plugin out with STORYKIT_LOAD_PLUGINS",
            plugin=name,
            hook=hook,
        ) from exc


def _trace_into_log(pm: pluggy.PluginManager) -> None:
    """pluggy's own hook tracing, one ``hook trace`` line per message in our logger."""
    if pm in _tracing:
        return
    _tracing.add(pm)

    def write(text: str) -> None:
        line = " ".join(text.split())
        if len(line) > _TRACE_MAX:
            line = line[: _TRACE_MAX - 1] + "…"
        log.info("hook trace %s", line)

    pm.trace.root.setwriter(write)
    pm.enable_tracing()
