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
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

import anyio
import pluggy

from storykit._base import MAX_TEXT, MAX_TITLE, _limit, _read_diff, _ref, _text
from storykit._plans import PlanCases
from storykit._review import BulkItem, ReviewCases
from storykit._suggestions import GenerateResult, SuggestionCases
from storykit._unicode import MAX_INT64
from storykit.artifacts import ArtifactWriter
from storykit.auth import Principal, Role
from storykit.backends import PolicySubject
from storykit.errors import Conflict, Invalid, PreconditionFailed
from storykit.events import EventBus
from storykit.filters import SuggestionFilter
from storykit.ids import check_id
from storykit.metrics import Metrics
from storykit.models import Event, Plan, PolicyDecision, Suggestion
from storykit.observers import ObserverRunner
from storykit.plugins import Registry, get_plugin_manager
from storykit.policy import PolicyEngine, policy_version
from storykit.settings import Settings
from storykit.store import Store, Watchable, open_store

__all__ = ["BulkItem", "GenerateResult", "Storykit"]

ARTIFACT_FLUSH_DEADLINE = 10.0
"""Seconds :meth:`Storykit.open` waits at exit for queued artifacts to be written."""


class Storykit(SuggestionCases, ReviewCases, PlanCases):
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
        self.artifacts = ArtifactWriter(
            settings.suggestions_dir,
            settings.plans_dir,
            on_failure=lambda kind: metrics.artifact_failures.labels(kind=kind).inc(),
        )
        self.observers: ObserverRunner | None = None
        """What runs the ``storykit_on_event`` observers here, if this process does."""

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        metrics: Metrics | None = None,
        run_observers: bool = False,
    ) -> AsyncIterator[Storykit]:
        """``run_observers``: this process runs the ``storykit_on_event`` observers, in
        turn with every other one that does (:mod:`storykit.observers`), and polls the
        open pull requests no webhook reports on (:mod:`storykit._tracking`). The web host
        does; a CLI command does not, so it never fires the server's observers again."""
        settings.ensure_dirs()
        pm = plugin_manager or get_plugin_manager(only=settings.load_plugins)
        metrics = metrics or Metrics()
        registry = Registry(pm, settings)
        for failure in registry.failures:  # raised while registering, before metrics existed
            metrics.plugin_errors.labels(plugin=failure.plugin, hook=failure.hook).inc()
        registry.on_failure = lambda f: metrics.plugin_errors.labels(
            plugin=f.plugin, hook=f.hook
        ).inc()
        async with open_store(settings) as store:
            bus = EventBus(store, queue_max=settings.sse_queue_max)
            bus.on_drop = lambda n: metrics.sse_queue_dropped.inc(n)
            async with bus, anyio.create_task_group() as tg:
                if isinstance(store, Watchable):  # PostgreSQL: other replicas' commits
                    store.watch(bus.nudge)
                core = cls(settings, store=store, bus=bus, registry=registry, metrics=metrics)
                if run_observers:
                    core.observers = ObserverRunner(store, registry)
                    await core.observers.prepare()
                    tg.start_soon(core.observers.run)
                    tg.start_soon(core.run_pr_polling)  # the same background duty
                bus.add_listener(core._observe)
                tg.start_soon(core.artifacts.run)
                try:
                    yield core
                finally:
                    # What was committed gets its files before the process goes (a CLI
                    # command exits right after its change), within a bound.
                    with anyio.move_on_after(ARTIFACT_FLUSH_DEADLINE, shield=True):
                        await core.artifacts.flush()
                    tg.cancel_scope.cancel()

    # -- events ---------------------------------------------------------------
    def _observe(self, event: Event) -> None:
        self.metrics.events_published.labels(type=event.type).inc()
        if self.observers is not None:
            self.observers.wake()

    async def list_suggestions(
        self,
        where: SuggestionFilter | None = None,
        *,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Suggestion]:
        """Newest first, those ``where`` matches (default: all); ``after`` pages on."""
        return await self.store.list_suggestions(
            where,
            after=check_id(after, "sug", what="after") if after else None,
            limit=_limit(limit),
        )

    async def list_plans(self, *, after: str | None = None, limit: int = 50) -> list[Plan]:
        return await self.store.list_plans(
            after=check_id(after, "plan", what="after") if after else None, limit=_limit(limit)
        )

    async def read_events(self, *, after: int = 0, limit: int = 100) -> list[Event]:
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_INT64:
            raise Invalid(f"after must be an event id: a whole number from 0 to {MAX_INT64}")
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

    async def set_policies(
        self, actor: Principal, document: object, *, if_match: Collection[str] | None = None
    ) -> dict[str, Any]:
        """Replace the policy document (admin); every section is validated before saving.

        ``document`` is the bare sections (policy name → settings) or what
        :meth:`get_policies` returned, edited: ``{"version", "policies"}``. Its
        ``version``, like the versions in ``if_match`` (the ``If-Match`` header), must
        be the current one, else :class:`PreconditionFailed` and nothing is saved;
        the check and the write are one transaction. ``"*"`` in ``if_match``, or no
        version at all, replaces whatever is there.
        """
        actor.require(Role.ADMIN)
        sections, version_read = self._policy_sections(document)
        # Each is a set of versions of which the current one must be one.
        wanted = [set(if_match)] if if_match is not None and "*" not in if_match else []
        if version_read is not None:
            wanted.append({version_read})
        stored = await self.store.get_policy_config()
        current = policy_version(self.policy.effective(stored))
        for versions in wanted:
            if current not in versions:
                raise PreconditionFailed(
                    f"the policy document is at version {current}, not"
                    f" {' or '.join(sorted(versions)) or 'the one given'}: another change was"
                    " saved meanwhile. Read it again (GET /policies), apply your edit to it and"
                    " send it with the new version"
                )
        clean = self.policy.validate(sections)
        effective = self.policy.effective(clean)
        version = policy_version(effective)
        try:
            await self._commit(
                "policy.updated",
                {"version": version, "by": actor.name},
                policy_config=clean,
                policy_expect=dict(stored or {}) if wanted else None,
            )
        except Conflict:
            raise PreconditionFailed(
                "the policy document changed while this change was being saved. Read it"
                " again (GET /policies), apply your edit to it and send it with the new version"
            ) from None
        return {"version": version, "policies": effective}

    def _policy_sections(self, document: object) -> tuple[object, str | None]:
        """The sections of a bare document or of a ``{"version", "policies"}`` one."""
        if (
            isinstance(document, Mapping)
            and "policies" in document
            and "policies" not in self.registry.policies
            and set(document) <= {"version", "policies"}
        ):
            version = document.get("version")
            if version is not None and not isinstance(version, str):
                raise Invalid('"version" must be the version GET /policies returned (a string)')
            return document["policies"], version
        return document, None

    async def check_diff(
        self,
        *,
        diff: str,
        title: str = "",
        rationale: str = "",
        agent: str = "",
        base_ref: str = "HEAD",
    ) -> PolicyDecision:
        """Evaluate a diff against the current policies without storing anything: the same
        judgement as a submission's (the repository and ``base_ref`` included)."""
        title = _text(title, "title", MAX_TITLE)
        rationale = _text(rationale, "rationale", MAX_TEXT)
        base_ref = _ref(base_ref)
        diff, parsed, _ = await _read_diff(diff, self.settings.max_body_bytes, required=False)
        subject = PolicySubject(
            diff=diff,
            title=title,
            rationale=rationale,
            files=parsed.files,
            agent=agent,
            repo_path=self.settings.repo_path,
            base_ref=base_ref,
        )
        return await self.policy.evaluate(subject, await self.policy_document())
