"""The local client: the core in this process, on the local data directory.

The actor is a local admin named after the OS user (``getpass.getuser()``): whoever
can read the data directory already holds everything in it, so a key would guard
nothing. Like any reviewer, that user cannot approve what they proposed themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from storykit.auth import Principal, Role
from storykit.events import Gap
from storykit.models import Event, to_dict
from storykit.paths import find_repo_root
from storykit.services import Storykit
from storykit.settings import Settings
from storykit_cli.client import JSON, OnProgress, reset_notice
from storykit_cli.context import local_user
from storykit_cli.errors import Failure

__all__ = ["LocalClient"]

# How long to keep rendering progress after generate returns, waiting for its
# final event; only a bound for a bus that stalls, never reached in practice.
_PROGRESS_GRACE = 2.0


def _page(items: Sequence[Any], limit: int, head: int) -> JSON:
    """The routes' list envelope: a full page means there may be more after its last id;
    ``head`` is the newest event id, read before the items."""
    return {
        "items": [to_dict(i) for i in items],
        "next_after": items[-1].id if len(items) == limit else None,
        "head": head,
    }


class LocalClient:
    def __init__(
        self,
        core: Storykit,
        actor: Principal,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self.core = core
        self.actor = actor
        self._notice = on_notice or (lambda _message: None)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, data_dir: Path | None, *, on_notice: Callable[[str], None] | None = None
    ) -> AsyncIterator[LocalClient]:
        settings = Settings.from_env(data_dir=data_dir)
        if find_repo_root(settings.repo_path) is None and not settings.db_path.exists():
            # Nothing here yet, and no repository to work on: making an empty data
            # directory and saying "no suggestions" would only mislead.
            where = (
                f"REPO_PATH={settings.repo_path}"
                if settings.get("REPO_PATH")
                else f"{settings.repo_path}"
            )
            raise Failure(
                f"not in a git repository ({where})",
                hint="cd into your repository, set REPO_PATH to it,"
                " or use --url and --key to work against a running server",
            )
        async with Storykit.open(settings) as core:
            yield cls(core, Principal(name=local_user(), role=Role.ADMIN), on_notice)

    # -- suggestions ----------------------------------------------------------
    async def generate(
        self,
        *,
        sources: Sequence[str] | None,
        paths: Sequence[str],
        on_progress: OnProgress | None = None,
    ) -> JSON:
        if on_progress is None:
            result = await self.core.generate(self.actor, sources=sources, paths=paths)
        else:
            # Subscribe before starting, so no progress event is published unseen.
            async with (
                self.core.bus.subscribe() as subscription,
                anyio.create_task_group() as tg,
            ):
                finished = anyio.Event()

                async def watch() -> None:
                    async for item in subscription:
                        if isinstance(item, Event) and item.type == "suggest.progress":
                            on_progress(item.data)
                        elif isinstance(item, Event) and item.type == "suggest.generated":
                            finished.set()
                            return

                tg.start_soon(watch)
                try:
                    result = await self.core.generate(self.actor, sources=sources, paths=paths)
                    with anyio.move_on_after(_PROGRESS_GRACE):
                        await finished.wait()
                finally:
                    tg.cancel_scope.cancel()
        return {
            "items": [to_dict(s) for s in result.suggestions],
            "count": len(result.suggestions),
            "errors": list(result.errors),
        }

    async def list_suggestions(
        self,
        *,
        status: str | None,
        source: str | None,
        agent: str | None,
        risk: str | None,
        after: str | None,
        limit: int,
    ) -> JSON:
        head = await self.core.event_head()
        items = await self.core.list_suggestions(
            status=status, source=source, agent=agent, risk=risk, after=after, limit=limit
        )
        return _page(items, limit, head)

    async def get_suggestion(self, suggestion_id: str) -> JSON:
        return to_dict(await self.core.get_suggestion(suggestion_id))

    async def submit(
        self,
        *,
        title: str,
        diff: str,
        rationale: str,
        base_ref: str,
        idempotency_key: str | None = None,
    ) -> JSON:
        return to_dict(
            await self.core.submit(
                self.actor,
                title=title,
                diff=diff,
                rationale=rationale,
                base_ref=base_ref,
                idempotency_key=idempotency_key,
            )
        )

    async def revise(
        self,
        suggestion_id: str,
        *,
        diff: str,
        title: str | None,
        rationale: str | None,
        idempotency_key: str | None = None,
    ) -> JSON:
        return to_dict(
            await self.core.revise(
                self.actor,
                suggestion_id,
                diff=diff,
                title=title,
                rationale=rationale,
                idempotency_key=idempotency_key,
            )
        )

    async def review(self, suggestion_id: str, *, action: str, comment: str) -> JSON:
        return to_dict(
            await self.core.review(self.actor, suggestion_id, action=action, comment=comment)
        )

    async def refine(self, suggestion_id: str, *, instructions: str, refiner: str | None) -> JSON:
        return to_dict(
            await self.core.refine(
                self.actor, suggestion_id, instructions=instructions, refiner=refiner
            )
        )

    # -- plans ----------------------------------------------------------------
    async def plan(self, *, goal: str, suggestion_ids: Sequence[str] | None) -> JSON:
        return to_dict(await self.core.plan(self.actor, goal=goal, suggestion_ids=suggestion_ids))

    async def list_plans(self, *, after: str | None, limit: int) -> JSON:
        head = await self.core.event_head()
        return _page(await self.core.list_plans(after=after, limit=limit), limit, head)

    async def get_plan(self, plan_id: str) -> JSON:
        return to_dict(await self.core.get_plan(plan_id))

    async def select(self, plan_id: str, *, variant: str) -> JSON:
        return to_dict(await self.core.select(self.actor, plan_id, variant=variant))

    async def open_pr(
        self, plan_id: str, *, variant: str | None, dry_run: bool, branch: str | None = None
    ) -> JSON:
        return to_dict(
            await self.core.open_pr(
                self.actor, plan_id, variant=variant, dry_run=dry_run, branch=branch
            )
        )

    # -- policies -------------------------------------------------------------
    async def get_policies(self) -> JSON:
        return await self.core.get_policies()

    async def set_policies(self, document: object) -> JSON:
        return await self.core.set_policies(self.actor, document)

    async def check_diff(self, *, diff: str, title: str, rationale: str) -> JSON:
        decision = await self.core.check_diff(
            diff=diff, title=title, rationale=rationale, agent=self.actor.name
        )
        return to_dict(decision)

    # -- system ---------------------------------------------------------------
    async def plugins(self) -> JSON:
        import storykit

        return {
            "version": storykit.__version__,
            "plugins": self.core.plugins(),
            "errors": [to_dict(f) for f in reversed(self.core.registry.failures)],
            "pr_backend": self.core.settings.pr_backend,
        }

    async def read_events(self, *, after: int, limit: int) -> JSON:
        events = await self.core.read_events(after=after, limit=limit)
        return {
            "items": [to_dict(e) for e in events],
            "last_id": events[-1].id if events else after,
            "head": await self.core.event_head(),
        }

    async def follow_events(self, *, after: int | None) -> AsyncIterator[JSON]:
        # The bus polls the store, so this also sees what a server or another CLI
        # writes to the same database.
        async with self.core.bus.subscribe(last_event_id=after) as subscription:
            if subscription.reset:
                self._notice(reset_notice(after, subscription.head))
            async for item in subscription:
                if isinstance(item, Gap):
                    async for missed in self._replay(item):
                        yield missed
                else:
                    yield to_dict(item)

    async def _replay(self, gap: Gap) -> AsyncIterator[JSON]:
        cursor = gap.first_id - 1
        while cursor < gap.last_id:
            page = await self.core.read_events(after=cursor, limit=1000)
            for event in page:
                if event.id > gap.last_id:
                    return
                cursor = event.id
                yield to_dict(event)
            if not page:
                return
