"""The use cases: each one async call on :class:`Storykit`.

Hosts stay thin: a route or a command parses input, calls one method here and
renders the result. Every method that changes state writes exactly one event, in
the same transaction as the change. Every method takes the acting
:class:`~storykit.auth.Principal` and enforces the rules itself, so no host can
forget them: agents never approve, nobody approves their own proposal, an
approval stops counting when the diff changes, blocked suggestions cannot be
approved.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pluggy

from storykit._base import _enum, _limit, _text
from storykit._plans import PlanCases
from storykit._suggestions import GenerateResult, SuggestionCases
from storykit.artifacts import ArtifactWriter
from storykit.auth import Principal, Role
from storykit.backends import PolicySubject
from storykit.diffs import parse_diff
from storykit.errors import Invalid
from storykit.events import EventBus
from storykit.ids import check_id
from storykit.metrics import Metrics
from storykit.models import Event, Plan, PolicyDecision, Risk, Status, Suggestion
from storykit.plugins import Registry, get_plugin_manager
from storykit.policy import PolicyEngine, policy_version
from storykit.settings import Settings
from storykit.store import Store

__all__ = ["GenerateResult", "Storykit"]

_OBSERVER_QUEUE = 10_000


class Storykit(SuggestionCases, PlanCases):
    """The storykit core: settings, store, event bus, plugins and the use cases over them.

    Build it with :meth:`open`, which also runs its background tasks::

        async with Storykit.open(Settings.from_env()) as core:
            await core.submit(actor, title="…", diff="…")
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        bus: EventBus,
        registry: Registry,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.registry = registry
        self.metrics = metrics
        self.policy = PolicyEngine(registry)
        self.artifacts = ArtifactWriter(settings.suggestions_dir, settings.plans_dir)
        self._observers_in, self._observers_out = anyio.create_memory_object_stream[Event](
            _OBSERVER_QUEUE
        )
        self._dropped_observations = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        metrics: Metrics | None = None,
    ) -> AsyncIterator[Storykit]:
        from storykit.store.sqlite import SqliteStore  # the default, embedded store

        settings.ensure_dirs()
        pm = plugin_manager or get_plugin_manager(only=settings.load_plugins)
        metrics = metrics or Metrics()
        registry = Registry(pm, settings)
        for failure in registry.failures:  # raised while registering, before metrics existed
            metrics.plugin_errors.labels(plugin=failure.plugin, hook=failure.hook).inc()
        registry.on_failure = lambda f: metrics.plugin_errors.labels(
            plugin=f.plugin, hook=f.hook
        ).inc()
        async with SqliteStore(settings.db_path) as store:
            bus = EventBus(store, queue_max=settings.sse_queue_max)
            bus.on_drop = lambda n: metrics.sse_queue_dropped.inc(n)
            async with bus, anyio.create_task_group() as tg:
                core = cls(settings, store=store, bus=bus, registry=registry, metrics=metrics)
                bus.add_listener(core._observe)
                tg.start_soon(core._run_observers)
                try:
                    yield core
                finally:
                    core._observers_in.close()
                    tg.cancel_scope.cancel()

    # -- events ---------------------------------------------------------------
    def _observe(self, event: Event) -> None:
        self.metrics.events_published.labels(type=event.type).inc()
        try:
            self._observers_in.send_nowait(event)
        except anyio.WouldBlock:
            self._dropped_observations += 1

    async def _run_observers(self) -> None:
        async with self._observers_out:
            async for event in self._observers_out:
                await self.registry.notify(event)

    async def list_suggestions(
        self,
        *,
        status: str | None = None,
        source: str | None = None,
        agent: str | None = None,
        risk: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Suggestion]:
        return await self.store.list_suggestions(
            status=_enum(Status, status, "status"),
            source=source or None,
            agent=agent or None,
            risk=_enum(Risk, risk, "risk"),
            after=check_id(after, "sug", what="after") if after else None,
            limit=_limit(limit),
        )

    async def list_plans(self, *, after: str | None = None, limit: int = 50) -> list[Plan]:
        return await self.store.list_plans(
            after=check_id(after, "plan", what="after") if after else None, limit=_limit(limit)
        )

    async def read_events(self, *, after: int = 0, limit: int = 100) -> list[Event]:
        if after < 0:
            raise Invalid("after must be 0 or more")
        return await self.store.read_events(after=after, limit=_limit(limit, 1000))

    async def event_head(self) -> int:
        """The newest event id: read it before a snapshot (a list) to resume after it."""
        return await self.store.last_event_id()

    async def refresh_gauges(self) -> None:
        self.metrics.set_suggestion_counts(await self.store.count_suggestions_by_status())

    def plugins(self) -> list[dict[str, Any]]:
        return self.registry.describe()

    # -- policies -------------------------------------------------------------
    async def get_policies(self) -> dict[str, Any]:
        """The effective policy document and its version."""
        document = await self.policy_document()
        return {"version": policy_version(document), "policies": document}

    async def set_policies(self, actor: Principal, document: object) -> dict[str, Any]:
        """Replace the policy document (admin); every section is validated before saving."""
        actor.require(Role.ADMIN)
        clean = self.policy.validate(document)
        effective = self.policy.effective(clean)
        version = policy_version(effective)
        await self._commit(
            "policy.updated", {"version": version, "by": actor.name}, policy_config=clean
        )
        return {"version": version, "policies": effective}

    async def check_diff(
        self, *, diff: str, title: str = "", rationale: str = "", agent: str = ""
    ) -> PolicyDecision:
        """Evaluate a diff against the current policies without storing anything."""
        parsed = parse_diff(_text(diff, "diff", self.settings.max_body_bytes))
        subject = PolicySubject(
            diff=diff, title=title, rationale=rationale, files=parsed.files, agent=agent
        )
        return await self.policy.evaluate(subject, await self.policy_document())
