from __future__ import annotations

import pytest

from storykit_watchdog.backoff import Backoff, BackoffPolicy, GiveUp


def delays(backoff: Backoff, n: int) -> list[float]:
    return [backoff.next_delay() for _ in range(n)]


def test_delays_grow_exponentially_without_jitter() -> None:
    b = Backoff(BackoffPolicy(initial=1, factor=2, maximum=60), random=lambda: 0.5)
    assert delays(b, 8) == [1, 2, 4, 8, 16, 32, 60, 60]
    assert b.failures == 8


def test_reset_starts_again_from_initial() -> None:
    b = Backoff(BackoffPolicy(initial=0.5, factor=3, maximum=100), random=lambda: 0.5)
    assert delays(b, 3) == [0.5, 1.5, 4.5]
    b.reset()
    assert delays(b, 2) == [0.5, 1.5]


@pytest.mark.parametrize(("r", "expected"), [(0.0, 9.0), (0.5, 10.0), (1.0, 11.0)])
def test_jitter_is_plus_minus_ten_percent(r: float, expected: float) -> None:
    b = Backoff(BackoffPolicy(initial=10, factor=2, maximum=60), random=lambda: r)
    assert b.next_delay() == pytest.approx(expected)


def test_jitter_never_exceeds_the_maximum() -> None:
    b = Backoff(BackoffPolicy(initial=1, factor=2, maximum=5), random=lambda: 1.0)
    assert max(delays(b, 10)) == 5


def test_many_failures_do_not_overflow() -> None:
    b = Backoff(BackoffPolicy(initial=1, factor=10, maximum=60), random=lambda: 0.5)
    b.failures = 10_000
    assert b.next_delay() == 60


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_give_up_counts_failures_within_the_window() -> None:
    clock = FakeClock()
    g = GiveUp(3, 10.0, clock=clock)
    assert not g.record_failure()
    clock.now += 4
    assert not g.record_failure()
    clock.now += 7  # the first failure is now older than the window
    assert not g.record_failure()
    clock.now += 1
    assert g.record_failure()


def test_never_gives_up_by_default() -> None:
    g = GiveUp(None, 1.0, clock=FakeClock())
    assert not any(g.record_failure() for _ in range(1000))
