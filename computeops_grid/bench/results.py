"""Raw measurements and the summary table derived from them.

Generic: a *system* (bare metal, a runtime, an orchestrator) runs a *workload* several
times; each run is one :class:`Measurement` (a value or an error). :func:`summary_rows`
turns them into one :class:`Row` per (workload, system) with the median, spread and the
ratio to the baseline system. ``report.py`` renders a :class:`Study`.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from computeops_grid.bench import stats


@dataclass(frozen=True)
class Measurement:
    system: str
    workload: str
    rep: int
    value: float | None  # None when the run failed
    wall: float = 0.0  # wall time of the whole launch, seconds
    error: str = ""


@dataclass(frozen=True)
class SystemInfo:
    """One compared system; ``available=False`` rows say ``why`` (found out by probing)."""

    name: str
    available: bool
    why: str = ""
    version: str = ""
    detail: str = ""


@dataclass(frozen=True)
class WorkloadInfo:
    name: str
    title: str
    unit: str = "s"
    lower_is_better: bool = True
    why: str = ""  # set when the workload could not run on this machine (found out by the tool)


@dataclass
class Row:
    workload: str
    system: str
    n_ok: int
    n_failed: int
    summary: stats.Summary | None = None
    ratio: stats.Ratio | None = None  # as a cost: above 1 = worse than the baseline
    error: str = ""


@dataclass
class Study:
    """Everything a report shows; saved as the raw JSON next to it."""

    title: str
    question: str
    baseline: str
    systems: list[SystemInfo]
    workloads: list[WorkloadInfo]
    measurements: list[Measurement] = field(default_factory=list)
    features: list[dict[str, str]] = field(default_factory=list)  # one row per system
    environment: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # the feature-matrix columns grouped under the study's criteria (bench/criteria.py)
    criteria: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # resolution, interoperability (JSON as is)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> Study:
        data = json.loads(path.read_text())
        return cls(
            title=data["title"],
            question=data["question"],
            baseline=data["baseline"],
            systems=[SystemInfo(**s) for s in data["systems"]],
            workloads=[WorkloadInfo(**w) for w in data["workloads"]],
            measurements=[Measurement(**m) for m in data["measurements"]],
            features=data["features"],
            environment=data["environment"],
            notes=data["notes"],
            criteria=data.get("criteria", {}),
            extra=data.get("extra", {}),
        )


def summary_rows(study: Study) -> list[Row]:
    """One row per (workload, available system), in declaration order."""
    rows = []
    for wl in study.workloads:
        if wl.why:
            continue
        base = _values(study.measurements, study.baseline, wl.name)
        for system in study.systems:
            if system.available:
                rows.append(_row(study.measurements, wl, system.name, base, system.name == study.baseline))
    return rows


def _values(measurements: Sequence[Measurement], system: str, workload: str) -> list[float]:
    return [
        m.value for m in measurements if m.system == system and m.workload == workload and m.value is not None
    ]


def _row(
    measurements: Sequence[Measurement], wl: WorkloadInfo, system: str, base: list[float], is_base: bool
) -> Row:
    mine = [m for m in measurements if m.system == system and m.workload == wl.name]
    values = [m.value for m in mine if m.value is not None]
    errors = [m.error for m in mine if m.value is None]
    row = Row(wl.name, system, len(values), len(errors), error=errors[0] if errors else "")
    if not values:
        row.error = row.error or "no measurement"
        return row
    row.summary = stats.summarize(values)
    if base and not is_base and statistics.median(base) > 0:
        raw = stats.ratio(values, base)
        row.ratio = stats.overhead(raw, lower_is_better=wl.lower_is_better)
    return row
