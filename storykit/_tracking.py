"""The use cases of a pull request after it opened: record it, hear from its forge.

A PR backend that opened a pull request says which (:attr:`PRResult.number` and
``repository``); :meth:`TrackingCases._record_opened` keeps it on the plan with the
``pr.created`` event. From then on its forge's news arrives two ways, and each change
a person would notice is one ``pr.updated`` event, written with the plan:

- **webhooks** (:meth:`TrackingCases.receive_webhook`): the host hands over the raw
  delivery; :mod:`storykit.webhooks` checks it is genuine, the backends that follow that
  forge (:class:`~storykit.backends.PRTracker`) read it, and the delivery's id is stored
  in the same transaction as the change, so a replay is ignored on every replica;
- **polling** (:meth:`TrackingCases.poll_pull_requests`), for the open pull requests of
  backends whose forge has no webhook secret configured, every
  ``STORYKIT_PR_POLL_INTERVAL`` seconds in the process that runs the observers.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping
from typing import Any

import anyio

from storykit import webhooks
from storykit._base import CoreBase
from storykit.auth import Principal
from storykit.backends import PRTracker, PRUpdate
from storykit.errors import Conflict, Invalid, NotFound, PluginError, StorykitError
from storykit.models import Event, Plan, PRResult, PRState, PullRequest, utcnow
from storykit.plugins import Registered
from storykit.pulls import apply_update, changed, summary

__all__ = ["TrackingCases", "WebhookOutcome"]

log = logging.getLogger(__name__)

# Another write to the plan (a selection, the other PR of a variant) between reading it
# and writing it back makes the write fail; it is read again, this many times at most.
_ATTEMPTS = 8


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class WebhookOutcome:
    """What storykit did with one webhook delivery."""

    forge: str
    delivery: str
    event: str
    result: str
    """``updated`` (a ``pr.updated`` event for each change), ``unchanged`` (about a pull
    request storykit follows, but nothing new), ``ignored`` (not about one it follows, or
    an event it does not read) or ``replayed`` (this delivery was handled before)."""
    detail: str
    updates: tuple[Mapping[str, Any], ...] = ()
    """Each pull request it changed: the plan's id with the ``pr.updated`` event's fields."""

    @property
    def status(self) -> int:
        return 202 if self.result == "ignored" else 200


class _Replayed(Exception):
    """Another process recorded this delivery while this one was handling it."""


class TrackingCases(CoreBase):
    # -- opened ---------------------------------------------------------------------------
    async def _record_opened(
        self,
        plan_id: str,
        backend: str,
        result: PRResult,
        actor: Principal,
        data: Mapping[str, Any],
    ) -> Event:
        """Write ``pr.created`` with the plan now holding the pull request ``result`` names."""
        if result.number is None or not result.repository:
            return await self._commit("pr.created", data)
        for _ in range(_ATTEMPTS):
            plan = await self.store.get_plan(plan_id)
            now = utcnow()
            pr = PullRequest(
                backend=backend,
                repository=result.repository,
                number=result.number,
                url=result.url or "",
                branch=result.branch,
                variant=result.variant,
                head=result.commit or "",
                opened_by=actor.name,
                opened_at=now,
                updated_at=now,
            )
            kept = tuple(p for p in plan.pull_requests if p.key != pr.key)
            updated = dataclasses.replace(plan, pull_requests=(*kept, pr), updated_at=now)
            try:
                return await self._commit(
                    "pr.created", data, plans=[updated], expect={plan.id: plan.updated_at}
                )
            except Conflict:
                continue
        # The pull request exists: say so even if the plan could not be written meanwhile.
        log.warning("plan %s kept changing; pull request %s is not followed", plan_id, result.url)
        return await self._commit("pr.created", data)

    # -- webhooks ---------------------------------------------------------------------------
    async def receive_webhook(
        self, forge: str, *, headers: Mapping[str, str], body: bytes
    ) -> WebhookOutcome:
        """Handle one delivery to ``POST /webhooks/<forge>`` (``headers`` in lower case).

        :class:`~storykit.errors.Unauthorized` unless its signature (GitHub) or token
        (GitLab) is the configured secret's; :class:`~storykit.errors.NotConfigured`
        when there is no secret.
        """
        delivery = webhooks.read_delivery(forge, self.settings.webhook_secret(forge), headers, body)
        key = (forge, delivery.id)

        def outcome(result: str, detail: str, updates: tuple[Any, ...] = ()) -> WebhookOutcome:
            return WebhookOutcome(
                forge=forge,
                delivery=delivery.id,
                event=delivery.event,
                result=result,
                detail=detail,
                updates=updates,
            )

        replayed = outcome("replayed", "this delivery was handled before; nothing changed")
        if await self.store.delivery_seen(*key):
            return replayed
        found = [
            (reg, update)
            for reg in self._trackers(forge)
            for update in self._webhook_updates(reg, delivery)
        ]
        known: list[tuple[Registered[Any], PRUpdate, str]] = []
        for reg, update in found:
            plan_id = await self.store.find_pull_request(reg.name, update.repository, update.number)
            if plan_id is not None:
                known.append((reg, update, plan_id))
        if not known:
            what = (
                "no pull request storykit opened"
                if found
                else f"no pull request storykit follows (event {delivery.event!r})"
            )
            return outcome("ignored", f"the delivery is about {what}; nothing changed")
        done: list[Mapping[str, Any]] = []
        recorded = False
        try:
            for index, (reg, update, plan_id) in enumerate(known):
                last = index == len(known) - 1
                _, event = await self._update_pr(
                    reg.name, update, plan_id, via="webhook", delivery=key if last else None
                )
                if event is not None:
                    done.append(dict(event.data))
                    recorded = last
            if not recorded and not await self.store.record_delivery(*key):
                return replayed
        except _Replayed:
            return replayed
        if done:
            return outcome("updated", f"{len(done)} pull request(s) changed", tuple(done))
        return outcome("unchanged", "storykit already holds what the delivery says")

    def _trackers(self, forge: str) -> list[Registered[Any]]:
        return [
            reg
            for reg in self.registry.pr_backends.values()
            if isinstance(reg.backend, PRTracker) and getattr(reg.backend, "webhook", None) == forge
        ]

    def _webhook_updates(self, reg: Registered[Any], delivery: webhooks.Delivery) -> list[PRUpdate]:
        hook = "PRTracker.webhook_updates"
        try:
            found = list(reg.backend.webhook_updates(delivery.event, delivery.payload))
        except StorykitError as exc:
            self.registry.record_failure(reg.plugin, hook, exc)
            raise
        except Exception as exc:
            self.registry.record_failure(reg.plugin, hook, exc)
            raise PluginError(f"{type(exc).__name__}: {exc}", plugin=reg.plugin, hook=hook) from exc
        bad = [u for u in found if not isinstance(u, PRUpdate)]
        if bad:
            message = f"returned {type(bad[0]).__name__!r}, not a PRUpdate"
            self.registry.record_failure(reg.plugin, hook, message)
            raise PluginError(message, plugin=reg.plugin, hook=hook)
        return found

    # -- polling ------------------------------------------------------------------------------
    async def poll_pull_requests(self) -> list[Event]:
        """Ask the forge about each open pull request no webhook reports on; the
        ``pr.updated`` events of what changed. A backend that fails is recorded as a plugin
        failure and skipped: the next poll tries again."""
        events: list[Event] = []
        for backend, repository, number, plan_id in await self.store.list_pull_requests(
            state=PRState.OPEN
        ):
            reg = self.registry.pr_backends.get(backend)
            if reg is None or not isinstance(reg.backend, PRTracker):
                continue
            forge = getattr(reg.backend, "webhook", None)
            if forge and self.settings.webhook_secret(forge):
                continue  # its webhooks report on it
            try:
                plan = await self.store.get_plan(plan_id)
            except NotFound:
                continue
            held = plan.pull_request((backend, repository, number))
            if held is None:
                continue
            try:
                update = await self.registry.call(
                    reg.plugin, "PRTracker.poll", functools.partial(reg.backend.poll, held)
                )
            except StorykitError:
                continue  # recorded by the registry
            if not isinstance(update, PRUpdate) or (update.repository, update.number) != (
                repository,
                number,
            ):
                self.registry.record_failure(
                    reg.plugin, "PRTracker.poll", f"answered for another pull request: {update!r}"
                )
                continue
            _, event = await self._update_pr(backend, update, plan_id, via="poll")
            if event is not None:
                events.append(event)
        return events

    async def run_pr_polling(self) -> None:
        """Poll every ``STORYKIT_PR_POLL_INTERVAL`` seconds, until cancelled (0: never)."""
        interval = self.settings.pr_poll_interval
        if interval <= 0:
            return
        while True:
            await anyio.sleep(interval)
            try:
                await self.poll_pull_requests()
            except StorykitError as exc:  # the database, say: the next round tries again
                log.warning("polling pull requests failed: %s", exc.detail)

    # -- one change -------------------------------------------------------------------------
    async def _update_pr(
        self,
        backend: str,
        update: PRUpdate,
        plan_id: str,
        *,
        via: str,
        delivery: tuple[str, str] | None = None,
    ) -> tuple[PullRequest | None, Event | None]:
        """Merge ``update`` into the plan's pull request; the ``pr.updated`` event if it
        changed anything (with ``delivery`` recorded in its transaction)."""
        key = (backend, update.repository, update.number)
        for _ in range(_ATTEMPTS):
            plan = await self.store.get_plan(plan_id)
            held = plan.pull_request(key)
            if held is None:
                return None, None
            new = apply_update(held, update)
            if not changed(held, new):
                return held, None
            now = utcnow()
            new = dataclasses.replace(new, updated_at=now)
            updated = _with_pr(plan, new, now)
            data = {
                "plan_id": plan.id,
                **summary(new),
                "was": {"state": held.state.value, "checks": held.checks.value},
                "via": via,
            }
            try:
                event = await self._commit(
                    "pr.updated",
                    data,
                    plans=[updated],
                    expect={plan.id: plan.updated_at},
                    delivery=delivery,
                )
            except Conflict:
                continue
            except Invalid:
                if delivery is not None and await self.store.delivery_seen(*delivery):
                    raise _Replayed from None
                raise
            return new, event
        raise Conflict(
            f"plan {plan_id} kept changing while its pull request was being updated; the"
            " forge will deliver again"
        )


def _with_pr(plan: Plan, pr: PullRequest, now: Any) -> Plan:
    prs = tuple(pr if p.key == pr.key else p for p in plan.pull_requests)
    return dataclasses.replace(plan, pull_requests=prs, updated_at=now)
