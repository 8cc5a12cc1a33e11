"""Per-agent rate limiters (GCRA: one timestamp of state per agent).

GCRA is the token bucket expressed as a "theoretical arrival time" (TAT): each
allowed request pushes it one emission interval further; a request is refused while
it lies more than ``burst - 1`` intervals in the future. O(1) time and memory per
agent, and the refusal says exactly how long to wait.

SPEC §8: the budget is shared by every replica, so the TAT lives where they all
see it, and time is the server's clock, never each replica's. :func:`open_limiter`
picks, by the settings:

- ``REDIS_URL`` set: :class:`RedisRateLimiter`, one Lua script per request
  (atomic in Redis, clocked by Redis ``TIME``), through ``coredis`` (the ``redis``
  extra), which runs on asyncio and on trio.
- else ``DATABASE_URL`` set: :class:`DatabaseRateLimiter`, one upsert statement per
  request in PostgreSQL, clocked by ``clock_timestamp()``.
- else (SQLite: one server process): :class:`RateLimiter`, in this process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio

from storykit.errors import BackendError, NotConfigured

if TYPE_CHECKING:
    from storykit.settings import Settings

__all__ = [
    "DatabaseRateLimiter",
    "Decision",
    "GcraStore",
    "Limiter",
    "RateLimiter",
    "RedisRateLimiter",
    "open_limiter",
]

REDIS_PREFIX = "storykit:ratelimit:"


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    """The burst: how many requests may arrive at once."""
    remaining: int
    retry_after: float
    """Seconds until the next request would be allowed (0 when allowed)."""
    reset: float
    """Seconds until the bucket is full again."""


class Limiter(Protocol):
    """What the hosts use: count a request, and the policy header."""

    @property
    def policy(self) -> str:
        """The IETF ``RateLimit-Policy`` value: ``burst`` requests per window."""

    async def check(self, key: str) -> Decision:
        """Count one request by ``key`` if it is allowed."""


class _Gcra:
    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._tolerance = self._interval * (burst - 1)

    @property
    def policy(self) -> str:
        window = max(1, math.ceil(self.burst / self.rate))
        return f'"default";q={self.burst};w={window}'

    def _decide(self, allowed: bool, tat: float, now: float) -> Decision:
        """The decision from one step: ``tat`` is the TAT after it, ``now`` its clock."""
        if not allowed:
            return Decision(
                allowed=False,
                limit=self.burst,
                remaining=0,
                retry_after=max(0.0, tat - self._tolerance - now),
                reset=max(0.0, tat - now),
            )
        # How many more requests would pass right now (the epsilon absorbs float error).
        remaining = math.floor((now + self._tolerance - tat) / self._interval + 1e-9) + 1
        return Decision(
            allowed=True,
            limit=self.burst,
            remaining=max(0, remaining),
            retry_after=0.0,
            reset=max(0.0, tat - now),
        )


class RateLimiter(_Gcra):
    """In this process: right for one server on SQLite, wrong for several replicas."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(rate, burst)
        self._clock = clock
        self._tat: dict[str, float] = {}

    def check_now(self, key: str) -> Decision:
        """:meth:`check`, without awaiting (nothing here waits)."""
        now = self._clock()
        tat = max(self._tat.get(key, now), now)
        if now < tat - self._tolerance - 1e-9:  # the epsilon absorbs float error
            return self._decide(False, tat, now)
        self._tat[key] = tat + self._interval
        return self._decide(True, tat + self._interval, now)

    async def check(self, key: str) -> Decision:
        return self.check_now(key)


@runtime_checkable
class GcraStore(Protocol):
    """A store that runs a GCRA step itself (:class:`~storykit.store.postgres.PostgresStore`)."""

    async def gcra(self, key: str, interval: float, tolerance: float) -> tuple[bool, float, float]:
        """(allowed, the TAT after the step, now), all by the database's clock."""


class DatabaseRateLimiter(_Gcra):
    """In the shared database: one statement per request, by its clock."""

    def __init__(self, store: GcraStore, rate: float, burst: int) -> None:
        super().__init__(rate, burst)
        self._store = store

    async def check(self, key: str) -> Decision:
        return self._decide(*await self._store.gcra(key, self._interval, self._tolerance))


# KEYS[1]: the agent's key; ARGV: interval, tolerance (seconds). Returns
# {allowed (1/0), TAT after, now} as strings (Lua numbers would be cut to integers).
# TIME before a write is fine: Redis replicates a script's effects, not the script.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - tolerance > now + 1e-9 then
  return {'0', tostring(tat), tostring(now)}
end
tat = tat + interval
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return {'1', tostring(tat), tostring(now)}
"""


PING_TIMEOUT = 2.0


class RedisRateLimiter(_Gcra):
    """In Redis: one Lua script per request (atomic there), by Redis's clock.

    Each agent's TAT is one key, ``prefix + name``, expiring when its bucket is full
    again (so idle agents cost nothing).
    """

    def __init__(self, client: Any, rate: float, burst: int, *, prefix: str = REDIS_PREFIX) -> None:
        super().__init__(rate, burst)
        self._client = client
        self._script = client.register_script(_LUA)
        self.prefix = prefix

    async def check(self, key: str) -> Decision:
        import coredis.exceptions

        try:
            allowed, tat, now = await self._script(
                keys=[self.prefix + key], args=[repr(self._interval), repr(self._tolerance)]
            )
        except coredis.exceptions.RedisError as exc:
            raise BackendError(
                f"the rate limiter's Redis failed: {type(exc).__name__}; check REDIS_URL"
                " and that Redis is up"
            ) from exc
        return self._decide(_text(allowed) == "1", float(_text(tat)), float(_text(now)))

    async def ping(self) -> bool:
        """True if Redis answers within :data:`PING_TIMEOUT` seconds (readiness)."""
        import coredis.exceptions

        with anyio.move_on_after(PING_TIMEOUT):
            try:
                return bool(await self._client.ping())
            except (coredis.exceptions.RedisError, OSError):
                return False
        return False


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextlib.asynccontextmanager
async def open_limiter(settings: Settings, store: object) -> AsyncIterator[Limiter]:
    """The limiter the settings choose (see the module), open while the block runs."""
    rate, burst = settings.rate_limit_rps, settings.rate_limit_burst
    if settings.redis_url:
        try:
            import coredis
        except ImportError as exc:
            raise NotConfigured(
                f"REDIS_URL is set but the Redis client is missing ({exc}); install it"
                " with: pip install 'storykit[redis]'"
            ) from exc
        client = coredis.Redis.from_url(settings.redis_url)
        async with client:
            yield RedisRateLimiter(client, rate, burst)
    elif isinstance(store, GcraStore):
        yield DatabaseRateLimiter(store, rate, burst)
    else:
        yield RateLimiter(rate, burst)
