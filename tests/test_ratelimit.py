"""server.ratelimit: token bucket and strikes, driven by an explicit clock (no sleeping)."""

from __future__ import annotations

import pytest

from server.ratelimit import Strikes, TokenBucket


def takes(bucket: TokenBucket, n: int, now: float) -> list[bool]:
    return [bucket.take(now) for _ in range(n)]


def test_bucket_starts_full_and_empties_after_burst() -> None:
    b = TokenBucket(rate=1.0, burst=5, now=100.0)
    assert takes(b, 5, 100.0) == [True] * 5
    assert b.take(100.0) is False
    assert b.take(100.0) is False


def test_bucket_refills_at_rate() -> None:
    b = TokenBucket(rate=2.0, burst=4, now=0.0)
    assert takes(b, 4, 0.0) == [True] * 4
    assert b.take(0.25) is False  # half a token
    assert b.take(0.5) is True  # one token after 0.5 s at 2/s
    assert b.take(0.5) is False
    assert takes(b, 3, 1.5) == [True, True, False]


def test_bucket_never_exceeds_burst() -> None:
    b = TokenBucket(rate=10.0, burst=3, now=0.0)
    assert takes(b, 5, 1000.0) == [True, True, True, False, False]


def test_bucket_refused_takes_do_not_spend() -> None:
    b = TokenBucket(rate=1.0, burst=1, now=0.0)
    assert b.take(0.0)
    assert takes(b, 100, 0.5) == [False] * 100
    assert b.take(1.0) is True  # refused attempts in between cost nothing


def test_bucket_clock_going_backwards_adds_nothing() -> None:
    b = TokenBucket(rate=1.0, burst=2, now=50.0)
    assert takes(b, 2, 50.0) == [True, True]
    assert b.take(10.0) is False
    assert b.take(49.0) is False
    assert b.take(51.0) is True


def test_bucket_fractional_rate() -> None:
    b = TokenBucket(rate=0.1, burst=1, now=0.0)
    assert b.take(0.0)
    assert b.take(9.9) is False
    assert b.take(10.0) is True


@pytest.mark.parametrize(("rate", "burst", "seconds"), [(50.0, 100, 10.0), (5.0, 1, 4.0)])
def test_bucket_long_run_admits_rate_times_time_plus_burst(rate: float, burst: int,
                                                           seconds: float) -> None:
    b = TokenBucket(rate=rate, burst=burst, now=0.0)
    step = 0.001
    admitted = sum(b.take(i * step) for i in range(int(seconds / step) + 1))
    assert admitted == pytest.approx(rate * seconds + burst, abs=1)


def test_strikes_reach_limit_within_window() -> None:
    s = Strikes(limit=3, window=10.0)
    assert s.add(0.0) is False
    assert s.add(1.0) is False
    assert s.add(2.0) is True


def test_strikes_outside_window_do_not_count() -> None:
    s = Strikes(limit=3, window=10.0)
    assert s.add(0.0) is False
    assert s.add(5.0) is False
    assert s.add(10.5) is False  # the strike at 0 has left the window
    assert s.add(11.0) is True  # 5, 10.5, 11


def test_strikes_window_edge_is_inclusive() -> None:
    s = Strikes(limit=2, window=10.0)
    assert s.add(0.0) is False
    assert s.add(10.0) is True


def test_strikes_keep_reporting_while_over_the_limit() -> None:
    s = Strikes(limit=2, window=1.0)
    s.add(0.0)
    assert [s.add(0.1 * i) for i in range(1, 6)] == [True] * 5


def test_strikes_spread_out_never_trip() -> None:
    s = Strikes(limit=20, window=10.0)
    assert not any(s.add(i * 0.6) for i in range(1000))  # 1 per 0.6 s: at most 17 per 10 s


def test_strikes_limit_one_trips_at_once() -> None:
    assert Strikes(limit=1, window=10.0).add(0.0) is True
