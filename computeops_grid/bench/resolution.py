"""How finely a run resolves the steady workloads, and how many repetitions ±3 % needs.

The half-width of a ratio's bootstrap interval shrinks like 1/sqrt(n): from the width measured
after ``n`` repetitions, ``n * (half_width / target)**2`` repetitions reach the target. The full
run measures a first pass, computes that number for every steady workload (all but start-up
and the GPU check) and system, runs the extra repetitions (up to a cap in repetitions and in
time) on the workloads that need them, and reports what was reached.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from computeops_grid.bench.results import Measurement, Row
from computeops_grid.bench.runner import Plan, System, run_study

TARGET = 0.03  # ±3 %
NOT_STEADY = ("startup", "gpu")


@dataclass(frozen=True)
class Need:
    workload: str
    system: str
    n: int  # repetitions measured
    half_width: float  # relative half-width of the 95 % interval of the ratio
    needed: int  # repetitions for ±TARGET

    def as_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "system": self.system,
            "n": self.n,
            "half_width": round(self.half_width, 4),
            "needed": self.needed,
        }


def needs(rows: list[Row], target: float = TARGET) -> list[Need]:
    """For each steady (workload, system) with a ratio: the repetitions that reach ±target."""
    out = []
    for r in rows:
        if r.workload in NOT_STEADY or r.ratio is None or r.ratio.value <= 0 or not r.n_ok:
            continue
        half = (r.ratio.high - r.ratio.low) / 2 / r.ratio.value
        out.append(
            Need(
                r.workload,
                r.system,
                r.n_ok,
                half,
                max(r.n_ok, math.ceil(round(r.n_ok * (half / target) ** 2, 6))),
            )
        )
    return out


def extend(
    systems: list[System],
    plan: Plan,
    first: list[Need],
    *,
    cap: int,
    budget_s: float,
    progress: Callable[[Measurement], None] | None = None,
) -> tuple[list[Measurement], dict[str, Any]]:
    """Extra repetitions of the steady workloads that need them, interleaved over every system
    (the baseline too), one round at a time until each has its number, ``cap`` or ``budget_s``."""
    goal: dict[str, int] = {}
    for need in first:
        goal[need.workload] = max(goal.get(need.workload, plan.repeats), min(cap, need.needed))
    todo = [w for w in plan.workloads if goal.get(w.name, 0) > plan.repeats]
    extra: list[Measurement] = []
    rep, started, stop = plan.repeats, time.monotonic(), "every workload reached its number"
    while todo:
        if time.monotonic() - started > budget_s:
            stop = f"time budget of {budget_s:.0f} s spent"
            break
        one = replace(plan, workloads=todo, repeats=1, seed=plan.seed + rep)

        def shown(m: Measurement, rep: int = rep) -> None:  # the progress line names the real round
            if progress is not None:
                progress(replace(m, rep=rep))

        extra += [replace(m, rep=rep) for m in run_study(systems, one, shown)]
        rep += 1
        todo = [w for w in todo if goal[w.name] > rep]
        if rep >= cap:
            break
    short = [n for n in first if n.needed > max(rep, cap)]
    if short and not stop.startswith("time"):
        stop = f"cap of {cap} repetitions reached; {len(short)} ratio(s) needed more"
    summary = {
        "target": TARGET,
        "first_pass_repeats": plan.repeats,
        "cap": cap,
        "budget_s": budget_s,
        "goal": goal,
        "done_repeats": rep,
        "stopped": stop,
        "extension_s": round(time.monotonic() - started, 1),
    }
    return extra, summary


def reached(need: Need, target: float = TARGET) -> bool:
    return round(need.half_width, 6) <= target


def table(first: list[Need], final: list[Need], target: float = TARGET) -> list[list[str]]:
    """The report's resolution table: first pass, repetitions needed, reached."""
    done = {(n.workload, n.system): n for n in final}
    head = [
        "workload",
        "system",
        "first pass",
        "± (first)",
        f"n for ±{target:.0%}",
        "n done",
        "± (final)",
        "±3 % reached",
    ]
    rows = [head]
    for need in first:
        last = done.get((need.workload, need.system), need)
        rows.append(
            [
                need.workload,
                need.system,
                str(need.n),
                f"{need.half_width:.1%}",
                str(need.needed),
                str(last.n),
                f"{last.half_width:.1%}",
                "yes" if reached(last, target) else "no",
            ]
        )
    return rows
