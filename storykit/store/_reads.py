"""The reads both stores share: documents by id, keyset pages, counts, idempotency keys.

SQLite and PostgreSQL differ here only in the parameter marker (``?`` or ``%s``) and in
how a statement reaches the database (``_read``), which each store provides. The only
thing formatted into SQL is that marker, a class constant: values are always parameters.
"""

# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from storykit.errors import NotFound
from storykit.filters import SuggestionFilter
from storykit.idempotency import IdempotentResult
from storykit.models import Plan, PRState, Revision, Status, Suggestion
from storykit.store._driver import Row
from storykit.store._values import limit as _limit

__all__ = ["DocumentReads"]


class DocumentReads:
    """Mixed into a store that sets :attr:`PARAM` and :attr:`_epoch` and has ``_read``."""

    PARAM: str
    """The driver's parameter marker."""
    _epoch: str | None

    async def _read(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        raise NotImplementedError

    async def get_suggestion(self, suggestion_id: str) -> Suggestion:
        p = self.PARAM
        rows = await self._read(f"SELECT doc FROM suggestions WHERE id = {p}", (suggestion_id,))
        if not rows:
            raise NotFound(f"no suggestion {suggestion_id!r}")
        return Suggestion.from_dict(json.loads(rows[0][0]))

    async def list_suggestions(
        self,
        where: SuggestionFilter | None = None,
        *,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Suggestion]:
        p = self.PARAM
        # The filter's keys are its field names, which are these columns: never the caller's text.
        conditions = (where or SuggestionFilter()).params()
        clauses = [f"{column} = {p}" for column in conditions]
        params: list[object] = list(conditions.values())
        if after is not None:
            clauses.append(f"id < {p}")
            params.append(after)
        sql = "SELECT doc FROM suggestions"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        rows = await self._read(f"{sql} ORDER BY id DESC LIMIT {p}", [*params, _limit(limit)])
        return [Suggestion.from_dict(json.loads(doc)) for (doc,) in rows]

    async def list_revisions(self, suggestion_id: str) -> list[Revision]:
        p = self.PARAM
        rows = await self._read(
            f"SELECT doc FROM suggestion_revisions WHERE suggestion_id = {p} ORDER BY number",
            (suggestion_id,),
        )
        return [Revision.from_dict(json.loads(doc)) for (doc,) in rows]

    async def get_revision(self, suggestion_id: str, number: int) -> Revision:
        p = self.PARAM
        rows = await self._read(
            f"SELECT doc FROM suggestion_revisions WHERE suggestion_id = {p} AND number = {p}",
            (suggestion_id, number),
        )
        if not rows:
            raise NotFound(f"{suggestion_id} has no revision {number}")
        return Revision.from_dict(json.loads(rows[0][0]))

    async def count_suggestions_by_status(self) -> dict[Status, int]:
        counts = dict.fromkeys(Status, 0)
        for status, count in await self._read(
            "SELECT status, COUNT(*) FROM suggestions GROUP BY status"
        ):
            counts[Status(status)] = int(count)
        return counts

    async def get_plan(self, plan_id: str) -> Plan:
        rows = await self._read(f"SELECT doc FROM plans WHERE id = {self.PARAM}", (plan_id,))
        if not rows:
            raise NotFound(f"no plan {plan_id!r}")
        return Plan.from_dict(json.loads(rows[0][0]))

    async def list_plans(self, *, after: str | None = None, limit: int = 50) -> list[Plan]:
        p = self.PARAM
        if after is None:
            rows = await self._read(
                f"SELECT doc FROM plans ORDER BY id DESC LIMIT {p}", (_limit(limit),)
            )
        else:
            rows = await self._read(
                f"SELECT doc FROM plans WHERE id < {p} ORDER BY id DESC LIMIT {p}",
                (after, _limit(limit)),
            )
        return [Plan.from_dict(json.loads(doc)) for (doc,) in rows]

    async def get_policy_config(self) -> Mapping[str, Any] | None:
        rows = await self._read("SELECT doc FROM policy_config WHERE id = 1")
        return dict(json.loads(rows[0][0])) if rows else None

    async def get_idempotent(self, agent: str, route: str, key: str) -> IdempotentResult | None:
        p = self.PARAM
        rows = await self._read(
            "SELECT request_hash, suggestion_id, response FROM idempotency_keys"
            f" WHERE agent = {p} AND route = {p} AND key = {p}",
            (agent, route, key),
        )
        if not rows:
            return None
        [(request_hash, suggestion_id, response)] = rows
        return IdempotentResult(
            agent=agent,
            route=route,
            key=key,
            request_hash=str(request_hash),
            suggestion_id=str(suggestion_id),
            response=json.loads(response),
        )

    async def find_pull_request(self, backend: str, repository: str, number: int) -> str | None:
        p = self.PARAM
        rows = await self._read(
            "SELECT plan_id FROM pull_requests"
            f" WHERE backend = {p} AND repository = {p} AND number = {p}",
            (backend, repository, int(number)),
        )
        return str(rows[0][0]) if rows else None

    async def list_pull_requests(self, *, state: PRState) -> list[tuple[str, str, int, str]]:
        rows = await self._read(
            "SELECT backend, repository, number, plan_id FROM pull_requests"
            f" WHERE state = {self.PARAM} ORDER BY plan_id, backend, repository, number",
            (PRState(state).value,),
        )
        return [(str(b), str(r), int(n), str(plan)) for b, r, n, plan in rows]

    async def delivery_seen(self, forge: str, delivery: str) -> bool:
        p = self.PARAM
        rows = await self._read(
            f"SELECT 1 FROM webhook_deliveries WHERE forge = {p} AND delivery = {p}",
            (forge, delivery),
        )
        return bool(rows)

    async def epoch(self) -> str:
        # Read once at open: it never changes (and replacing an SQLite file under an
        # open store does not change which file its connections read either).
        if self._epoch is None:
            raise RuntimeError("the store is not open")
        return self._epoch
