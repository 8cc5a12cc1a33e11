"""The local transport: the core in this process, on the local data directory.

The actor is a local admin named after the OS user (``getpass.getuser()``): whoever
can read the data directory already holds everything in it, so a key would guard
nothing. Like any reviewer, that user cannot approve what they proposed themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from storykit import replies
from storykit.auth import Principal, Role
from storykit.events import Gap, Subscription
from storykit.filters import SuggestionFilter
from storykit.models import to_dict
from storykit.paths import find_repo_root
from storykit.services import Storykit
from storykit.settings import Settings
from storykit_cli.errors import Failure
from storykit_cli.transport import JSON, Missed, Position, StreamItem
from storykit_cli.user import local_user

__all__ = ["LocalTransport"]


class LocalTransport:
    def __init__(self, core: Storykit, actor: Principal) -> None:
        self.core = core
        self.actor = actor

    @property
    def where(self) -> str:
        return str(self.core.settings.data_dir)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, data_dir: Path | None) -> AsyncIterator[LocalTransport]:
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
            yield cls(core, Principal(name=local_user(), role=Role.ADMIN))

    # -- events ---------------------------------------------------------------
    async def read_events(self, *, after: int, limit: int) -> JSON:
        return await replies.event_log(self.core, after=after, limit=limit)

    @contextlib.asynccontextmanager
    async def stream(
        self, *, after: int | None, epoch: str | None
    ) -> AsyncIterator[AsyncIterator[StreamItem]]:
        # The bus polls the store, so this also sees what a server or another CLI
        # writes to the same database.
        async with self.core.bus.subscribe(last_event_id=after, epoch=epoch) as subscription:
            async with contextlib.aclosing(_items(subscription)) as items:
                yield items

    # -- suggestions ----------------------------------------------------------
    async def generate(
        self, *, sources: Sequence[str] | None, paths: Sequence[str], run: str | None = None
    ) -> JSON:
        result = await self.core.generate(self.actor, sources=sources, paths=paths, run=run)
        return replies.generate_reply(result)

    async def list_suggestions(
        self, where: SuggestionFilter, *, after: str | None, limit: int
    ) -> JSON:
        return await replies.suggestion_page(self.core, where, after=after, limit=limit)

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

    async def review(
        self,
        suggestion_id: str,
        *,
        action: str,
        comment: str,
        comments: Sequence[Mapping[str, Any]] = (),
    ) -> JSON:
        return to_dict(
            await self.core.review(
                self.actor, suggestion_id, action=action, comment=comment, comments=comments
            )
        )

    async def review_many(
        self,
        *,
        action: str,
        comment: str,
        ids: Sequence[str] | None,
        where: SuggestionFilter | None,
        limit: int,
    ) -> JSON:
        items = await self.core.review_many(
            self.actor, action=action, comment=comment, ids=ids, where=where, limit=limit
        )
        return replies.bulk_reply(items)

    async def list_revisions(self, suggestion_id: str) -> JSON:
        return replies.revisions_reply(await self.core.list_revisions(suggestion_id))

    async def get_revision(self, suggestion_id: str, number: int) -> JSON:
        return to_dict(await self.core.get_revision(suggestion_id, number))

    async def interdiff(self, suggestion_id: str, *, start: int | None, end: int | None) -> JSON:
        return await self.core.interdiff(suggestion_id, start=start, end=end)

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
        return await replies.plan_page(self.core, after=after, limit=limit)

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

    async def check_diff(
        self, *, diff: str, title: str, rationale: str, base_ref: str = "HEAD"
    ) -> JSON:
        decision = await self.core.check_diff(
            diff=diff,
            title=title,
            rationale=rationale,
            agent=self.actor.name,
            base_ref=base_ref,
        )
        return to_dict(decision)

    # -- system ---------------------------------------------------------------
    async def plugins(self) -> JSON:
        return replies.plugins_reply(self.core)


async def _items(subscription: Subscription) -> AsyncGenerator[StreamItem, None]:
    yield Position(head=subscription.head, epoch=subscription.epoch, reset=subscription.reset)
    async for item in subscription:
        if isinstance(item, Gap):
            yield Missed(first_id=item.first_id, last_id=item.last_id)
        else:
            yield to_dict(item)
