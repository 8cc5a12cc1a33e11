"""A per-agent rate limiter (GCRA: one timestamp of state per agent).

GCRA is the token bucket expressed as a "theoretical arrival time": each allowed
request pushes it one emission interval further; a request is refused while it
lies more than ``burst`` intervals in the future. O(1) time and memory per agent,
and the refusal says exactly how long to wait.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

__all__ = ["Decision", "RateLimiter"]


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


class RateLimiter:
    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._interval = 1.0 / rate
        self._tolerance = self._interval * (burst - 1)
        self._clock = clock
        self._tat: dict[str, float] = {}

    @property
    def policy(self) -> str:
        """The IETF ``RateLimit-Policy`` value: ``burst`` requests per window."""
        window = max(1, math.ceil(self.burst / self.rate))
        return f'"default";q={self.burst};w={window}'

    def check(self, key: str) -> Decision:
        """Count one request by ``key`` if it is allowed."""
        now = self._clock()
        tat = max(self._tat.get(key, now), now)
        allow_at = tat - self._tolerance
        if now < allow_at - 1e-9:  # the epsilon absorbs float error at the boundary
            return Decision(
                allowed=False,
                limit=self.burst,
                remaining=0,
                retry_after=allow_at - now,
                reset=tat - now,
            )
        new_tat = tat + self._interval
        self._tat[key] = new_tat
        # How many more requests would pass right now (the epsilon absorbs float error).
        remaining = math.floor((now + self._tolerance - new_tat) / self._interval + 1e-9) + 1
        return Decision(
            allowed=True,
            limit=self.burst,
            remaining=max(0, remaining),
            retry_after=0.0,
            reset=new_tat - now,
        )
