"""Statistics of repeated measurements: medians, spread and ratios with confidence intervals.

Generic on purpose: a measurement is a number for one *system* (bare metal, a container
runtime, an orchestrator) on one *workload*; nothing here knows what either is. Every
sample is "lower is better" or "higher is better" as the workload declares it; ratios
are always ``system / baseline`` of the raw values, so a ratio above 1 is *slower* for a
time and *faster* for a throughput (:func:`overhead` turns both into "cost above 1").
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MIN_REPEATS = 5  # fewer samples give no meaningful spread or interval
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Summary:
    """Median and spread of one set of samples."""

    n: int
    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def rel_spread(self) -> float:
        """Inter-quartile range relative to the median (0.05 = 5 %)."""
        return self.iqr / abs(self.median) if self.median else math.inf


@dataclass(frozen=True)
class Ratio:
    """``system / baseline`` of medians, with a bootstrap confidence interval."""

    value: float
    low: float
    high: float
    confidence: float
    note: str = ""  # set when the spread is wider than the effect

    @property
    def significant(self) -> bool:
        """The interval excludes 1: the two systems really differ."""
        return not self.low <= 1.0 <= self.high


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (same as numpy's default) of already sorted values."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(samples: Sequence[float]) -> Summary:
    """Median, quartiles and range of ``samples`` (at least one)."""
    if not samples:
        raise ValueError("summary of no samples")
    values = sorted(samples)
    return Summary(
        n=len(values),
        median=statistics.median(values),
        q1=quantile(values, 0.25),
        q3=quantile(values, 0.75),
        minimum=values[0],
        maximum=values[-1],
    )


def ratio(
    samples: Sequence[float],
    baseline: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Ratio:
    """Ratio of medians ``samples / baseline`` with a percentile bootstrap interval.

    Both sides are resampled independently (the runs are not paired). The seed makes
    the interval reproducible for the same data.
    """
    if not samples or not baseline:
        raise ValueError("ratio needs samples on both sides")
    base_median = statistics.median(baseline)
    if base_median == 0:
        raise ValueError("baseline median is 0: no ratio")
    point = statistics.median(samples) / base_median
    rng = random.Random(seed)  # noqa: S311 - resampling, not secrets
    boots = []
    for _ in range(resamples):
        num = statistics.median(rng.choices(samples, k=len(samples)))
        den = statistics.median(rng.choices(baseline, k=len(baseline)))
        if den:
            boots.append(num / den)
    boots.sort()
    alpha = (1.0 - confidence) / 2
    low, high = quantile(boots, alpha), quantile(boots, 1 - alpha)
    return Ratio(point, low, high, confidence, spread_note(samples, baseline, point))


def spread_note(samples: Sequence[float], baseline: Sequence[float], point: float) -> str:
    """A warning when the runs scatter more than the two systems differ."""
    notes = []
    if min(len(samples), len(baseline)) < MIN_REPEATS:
        notes.append(f"fewer than {MIN_REPEATS} repetitions")
    effect = abs(point - 1.0)
    spread = max(summarize(samples).rel_spread, summarize(baseline).rel_spread)
    if spread > effect:
        notes.append(f"spread ({spread:.0%}) wider than the effect ({effect:.0%})")
    return "; ".join(notes)


def overhead(r: Ratio, *, lower_is_better: bool) -> Ratio:
    """Express a ratio as a cost: above 1 always means "worse than the baseline"."""
    if lower_is_better:
        return r
    return Ratio(1 / r.value, 1 / r.high, 1 / r.low, r.confidence, r.note)
