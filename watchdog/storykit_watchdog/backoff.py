"""Restart delays and the give-up policy: pure code with an injectable clock and random source."""

from __future__ import annotations

import random as _random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "BackoffPolicy", "GiveUp"]


@dataclass(frozen=True, kw_only=True)
class BackoffPolicy:
    """Delay before restart number n (from 0) is ``initial * factor**n``, capped at ``maximum``,
    then jittered by ``±jitter`` (a fraction) so that many watchdogs do not restart in step."""

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.1


class Backoff:
    """Counts consecutive failures and hands out the next delay.

    ``reset()`` is called by the supervisor once a child has stayed up for the
    stable period; until then every death makes the next delay longer.
    """

    def __init__(
        self, policy: BackoffPolicy, *, random: Callable[[], float] = _random.random
    ) -> None:
        self.policy = policy
        self.failures = 0
        self._random = random

    def next_delay(self) -> float:
        """The delay before the next restart; counts one more failure."""
        p = self.policy
        # Cap the exponent's result before jitter: factor**n overflows a float for large n.
        base = p.initial
        for _ in range(self.failures):
            base *= p.factor
            if base >= p.maximum:
                break
        base = min(base, p.maximum)
        self.failures += 1
        jittered = base * (1.0 + p.jitter * (2.0 * self._random() - 1.0))
        return max(0.0, min(jittered, p.maximum))

    def reset(self) -> None:
        self.failures = 0


class GiveUp:
    """Gives up after ``max_failures`` failures within ``window`` seconds (never if None)."""

    def __init__(
        self,
        max_failures: int | None,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: deque[float] = deque()

    def record_failure(self) -> bool:
        """Record one failure now; True when the policy says to give up."""
        if self.max_failures is None:
            return False
        now = self._clock()
        self._failures.append(now)
        while self._failures and self._failures[0] <= now - self.window:
            self._failures.popleft()
        return len(self._failures) >= self.max_failures
