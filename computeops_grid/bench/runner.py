"""Run every workload on every system, interleaved, and record each run.

Repetition ``r`` runs each workload on all systems in an order shuffled with a seed
derived from ``r``, so slow drift of the machine (other jobs, thermal state, page
cache) spreads over all systems instead of favouring the first. A run that fails
(non-zero exit, timeout, wrong checksum, launcher missing) becomes a
:class:`Measurement` with an error; the study goes on.
"""

from __future__ import annotations

import logging
import random
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from computeops_grid.bench.results import Measurement
from computeops_grid.bench.workloads import Paths, Scale, Workload, WorkloadError, parse_result

log = logging.getLogger(__name__)

# wrap(argv inside, scratch dir on the host) -> (argv on the host, env or None to inherit)
Wrap = Callable[[list[str], Path], tuple[list[str], "dict[str, str] | None"]]
RUN_TIMEOUT = 300.0
MAX_CONSECUTIVE_FAILURES = 3  # then the system's remaining runs are recorded as skipped


@dataclass
class System:
    """A way to run a command: bare metal (``wrap`` is the identity) or a container runtime."""

    name: str
    wrap: Wrap
    paths: Paths  # where the payload sees the image files and scratch
    gpu_wrap: Wrap | None = None  # the launch that passes the GPUs through (default: ``wrap``)
    failures: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class Plan:
    workloads: Sequence[Workload]
    scale: Scale
    repeats: int
    scratch: Path  # host directory bound as the payload's scratch
    files_sum: int
    seed: int = 0
    timeout: float = RUN_TIMEOUT


def run_once(system: System, workload: Workload, plan: Plan, rep: int) -> Measurement:
    """One launch of ``workload`` on ``system``; never raises for a failing run."""
    if system.failures >= MAX_CONSECUTIVE_FAILURES:
        return Measurement(system.name, workload.name, rep, None, error=f"skipped: {system.last_error}")
    inner = workload.argv(system.paths, plan.scale)
    try:
        wrap = system.gpu_wrap if workload.needs_gpu and system.gpu_wrap else system.wrap
        argv, env = wrap(inner, plan.scratch)
        t0 = time.perf_counter()
        proc = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=plan.timeout, check=False
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            raise WorkloadError(f"exit {proc.returncode}: {tail[0][:300]}")
        value = parse_result(workload, proc.stdout, workload.expected(plan.scale, plan.files_sum))
    except (OSError, subprocess.SubprocessError, WorkloadError) as exc:
        system.failures += 1
        system.last_error = str(exc)
        log.warning("%s on %s (rep %d) failed: %s", workload.name, system.name, rep, exc)
        return Measurement(system.name, workload.name, rep, None, error=str(exc))
    system.failures = 0
    return Measurement(system.name, workload.name, rep, wall if value is None else value, wall=wall)


def run_study(
    systems: Sequence[System],
    plan: Plan,
    progress: Callable[[Measurement], None] | None = None,
) -> list[Measurement]:
    """All repetitions of all workloads on all systems, interleaved."""
    out = []
    for rep in range(plan.repeats):
        order = list(systems)
        for workload in plan.workloads:
            random.Random(plan.seed * 1000 + rep).shuffle(order)  # noqa: S311 - ordering, not secrets
            for system in order:
                m = run_once(system, workload, plan, rep)
                out.append(m)
                if progress is not None:
                    progress(m)
    return out
