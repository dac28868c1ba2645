"""The statistics on known inputs."""

from __future__ import annotations

import math

import pytest

from computeops_grid.bench import stats


def test_summary_of_known_samples() -> None:
    s = stats.summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.n, s.median, s.q1, s.q3, s.minimum, s.maximum) == (5, 3.0, 2.0, 4.0, 1.0, 5.0)
    assert s.iqr == 2.0
    assert s.rel_spread == pytest.approx(2 / 3)


def test_quantile_interpolates_like_numpy() -> None:
    # numpy.quantile([1, 2, 3, 4], [0.25, 0.5, 0.75]) == [1.75, 2.5, 3.25]
    assert [stats.quantile([1, 2, 3, 4], q) for q in (0.25, 0.5, 0.75)] == [1.75, 2.5, 3.25]


def test_empty_samples_are_refused() -> None:
    with pytest.raises(ValueError, match="no samples"):
        stats.summarize([])
    with pytest.raises(ValueError, match="both sides"):
        stats.ratio([], [1.0])
    with pytest.raises(ValueError, match="baseline median is 0"):
        stats.ratio([1.0], [0.0, 0.0, 0.0])


def test_clear_effect_is_significant_without_note() -> None:
    base = [1.00, 1.01, 0.99, 1.00, 1.02, 0.98, 1.00]
    slow = [2.00, 2.02, 1.98, 2.00, 2.04, 1.96, 2.00]
    r = stats.ratio(slow, base)
    assert r.value == pytest.approx(2.0)
    assert 1.9 < r.low <= 2.0 <= r.high < 2.1
    assert r.significant
    assert r.note == ""


def test_identical_systems_give_ratio_one_and_interval_containing_one() -> None:
    base = [1.0, 1.2, 0.8, 1.1, 0.9, 1.05, 0.95]
    r = stats.ratio(list(base), base)
    assert r.value == 1.0
    assert r.low <= 1.0 <= r.high
    assert not r.significant


def test_note_when_spread_is_wider_than_effect() -> None:
    base = [1.0, 0.5, 1.5, 1.0, 0.7, 1.3]
    other = [1.05, 0.55, 1.6, 1.05, 0.75, 1.35]
    r = stats.ratio(other, base)
    assert "wider than the effect" in r.note
    assert not r.significant


def test_note_when_too_few_repetitions() -> None:
    assert "fewer than 5 repetitions" in stats.ratio([2.0, 2.0], [1.0, 1.0, 1.0, 1.0, 1.0]).note


def test_interval_is_reproducible_for_a_seed() -> None:
    a, b = [1.0, 1.3, 1.1, 1.6, 1.2], [1.0, 1.1, 0.9, 1.05, 1.0]
    assert stats.ratio(a, b, seed=7) == stats.ratio(a, b, seed=7)


def test_overhead_inverts_throughputs() -> None:
    r = stats.Ratio(0.5, 0.4, 0.8, 0.95)  # half the bandwidth of bare metal
    cost = stats.overhead(r, lower_is_better=False)
    assert (cost.value, cost.low, cost.high) == (2.0, 1.25, 2.5)
    assert stats.overhead(r, lower_is_better=True) is r
    assert math.isinf(stats.Summary(1, 0.0, 0.0, 0.0, 0.0, 0.0).rel_spread)
