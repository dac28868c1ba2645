"""`cops-grid bench runtimes`: the container technology study, from set-up to report.

Builds the bench image, finds the runtimes (``runtimes.py``), starts a private dockerd
when docker is asked for and the wrapper can drive it, runs the interleaved workloads,
measures the feature matrix and writes the report with its answer drawn from the data.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from computeops_grid.bench import (
    criteria,
    environment,
    features,
    interop,
    report,
    resolution,
    rootless,
    workloads,
)
from computeops_grid.bench.docker_setup import docker_for_study
from computeops_grid.bench.image import build_image
from computeops_grid.bench.lxc import lxd_for_study
from computeops_grid.bench.results import Measurement, Row, Study, WorkloadInfo, summary_rows
from computeops_grid.bench.runner import Plan, run_study
from computeops_grid.bench.runtimes import BASELINE, discover, load_pilot
from computeops_grid.errors import UsageError

log = logging.getLogger(__name__)

QUESTION = 'Is there a decisive advantage in leaving Docker for the "HPC" container runtimes?'
DECISIVE = 0.10  # a cost difference below 10 % on steady-state work is not decisive
HPC = ("apptainer", "singularity", "charliecloud", "shifter")
# feature-matrix cells quoted in the answer about Docker (keys of features.CHECKS)
FEATURES_FOR_ANSWER = (
    "daemon (who holds the payload)",
    "memory cap of the caller honoured",
    "works rootless (measured)",
)


@dataclass(frozen=True)
class Options:
    out: Path
    runtimes: list[str]
    repeats: int = 5
    quick: bool = False
    workloads: list[str] | None = None
    with_features: bool = True
    seed: int = 0
    rootless_user: str = rootless.DEFAULT_USER
    # full runs: extra repetitions until the steady workloads resolve ±3 %, within these caps
    resolve: bool = False
    max_repeats: int = 40
    resolve_budget_s: float = 1200.0
    interop: bool = False  # the Docker -> Singularity experiment (bench/interop.py) after the benchmark


def run(options: Options, progress: Callable[[Measurement], None] | None = None) -> report.Written:
    if options.repeats < 1:
        raise UsageError("--repeat must be at least 1", hint="use 5 or more for confidence intervals")
    chosen = workloads.by_name(options.workloads or [w.name for w in workloads.WORKLOADS])
    out = options.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    sampler = environment.Sampler().start()
    image = build_image(out / "image")
    work = Path(tempfile.mkdtemp(prefix="cops-bench-", dir=out))
    try:
        wanted = "docker" in options.runtimes and "docker" in load_pilot().RUNTIMES
        with (
            docker_for_study(wanted) as docker_note,
            lxd_for_study("lxd" in options.runtimes, image.rootfs) as lxd_note,
        ):
            scratch = work / "scratch"
            scratch.mkdir()
            systems, infos, adapters = discover(options.runtimes, image.rootfs, scratch, work)
            scale = workloads.QUICK if options.quick else workloads.FULL
            runnable = [w for w in chosen if not w.needs_gpu or image.gpu.available]
            plan = Plan(runnable, scale, options.repeats, scratch, image.files_sum, seed=options.seed)
            measurements = run_study(systems, plan, progress)
            resolved: dict[str, Any] = {}
            if options.resolve:
                measurements, resolved = _resolve(
                    systems,
                    plan,
                    infos=infos,
                    chosen=chosen,
                    measurements=measurements,
                    options=options,
                    progress=progress,
                )
            feature_rows = []
            if options.with_features:
                feature_rows = features.matrix(adapters, scratch, options.rootless_user)
            runtime_notes = [a.runtime.note() for a in adapters.values() if hasattr(a.runtime, "note")]
        interop_data: dict[str, Any] = {}
        if options.interop:
            interop_data = interop.run_experiment(work, options.runtimes)
            ease = interop.ease_columns(interop_data)
            for row in feature_rows:
                row.update(ease.get(row["runtime"], {}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    study = Study(
        title="Container runtimes on this machine: cops-grid bench runtimes",
        question=QUESTION,
        baseline=BASELINE,
        systems=infos,
        workloads=[WorkloadInfo(w.name, w.title, why="" if w in runnable else image.gpu.why) for w in chosen],
        measurements=measurements,
        features=feature_rows,
        environment={
            **environment.machine(),
            **_environment(image.best_level, options),
            **sampler.finish(),
            "GPU": image.gpu.description,
        },
        notes=[n for n in (docker_note, lxd_note, *runtime_notes) if n],
        criteria={k: list(v) for k, v in criteria.CRITERIA.items()} if feature_rows else {},
        extra={k: v for k, v in (("resolution", resolved), ("interop", interop_data)) if v},
    )
    return report.write(study, out, conclude(study))


def _resolve(
    systems: list[Any],
    plan: Plan,
    *,
    infos: list[Any],
    chosen: list[workloads.Workload],
    measurements: list[Measurement],
    options: Options,
    progress: Callable[[Measurement], None] | None,
) -> tuple[list[Measurement], dict[str, Any]]:
    """The first pass's spread gives the repetitions for ±3 %; run them (capped); both reported."""

    def rows(ms: list[Measurement]) -> list[Row]:
        infos_wl = [WorkloadInfo(w.name, w.title) for w in chosen]
        return summary_rows(Study("", "", BASELINE, infos, infos_wl, measurements=ms))

    first = resolution.needs(rows(measurements))
    extra, summary = resolution.extend(
        systems, plan, first, cap=options.max_repeats, budget_s=options.resolve_budget_s, progress=progress
    )
    measurements = measurements + extra
    final = resolution.needs(rows(measurements))
    summary["first"] = [n.as_dict() for n in first]
    summary["final"] = [n.as_dict() for n in final]
    return measurements, summary


def _environment(level: str, options: Options) -> dict[str, str]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "host": platform.node(),
        "kernel": platform.release(),
        "cpu cores": str(os.cpu_count()),
        "best x86-64 level": level,
        "load average at end": " ".join(f"{x:.2f}" for x in load),
        "repetitions": str(options.repeats),
        "sizes": "quick" if options.quick else "full",
    }


def conclude(study: Study) -> str:
    """The answer to the question, in words, from the measured rows only."""
    rows = summary_rows(study)
    measured = [s.name for s in study.systems if s.available and s.name != study.baseline]
    if not measured:
        return "No container runtime could be measured on this machine, so the data cannot answer."
    steady = {name: _steady_costs(rows, name) for name in measured}
    worst = {name: _worst(costs) for name, costs in steady.items() if costs}
    start = {r.system: r.summary.median for r in rows if r.workload == "startup" and r.summary}
    lines = [_verdict(steady, worst, measured), _startup_line(start, study.baseline)]
    lines.append(_precision_line(rows, study))
    lines.append(_docker_line(study, steady, start))
    lines.append(_gpu_line(study, rows))
    return "\n\n".join(line for line in lines if line)


def _worst(costs: dict[str, float]) -> float:
    """The cost ratio furthest from 1 (either way)."""
    return max(costs.values(), key=lambda c: abs(c - 1))


def _steady_costs(rows: list[Row], system: str) -> dict[str, float]:
    """Cost ratios of the workloads after start-up, where the interval excludes 1 (else 1.0)."""
    return {
        r.workload: (r.ratio.value if r.ratio.significant else 1.0)
        for r in rows
        if r.system == system and r.workload != "startup" and r.ratio is not None
    }


def _verdict(steady: dict[str, dict[str, float]], worst: dict[str, float], measured: list[str]) -> str:
    heavy = {n: c for n, c in worst.items() if abs(c - 1) > DECISIVE}
    within = [n for n in measured if n not in heavy and steady.get(n)]
    parts = []
    if within:
        parts.append(
            f"Once started, {', '.join(within)} run every workload within {DECISIVE:.0%} of bare metal "
            "(or indistinguishable from it): for steady-state work the runtime choice is not decisive."
        )
    for name, cost in sorted(heavy.items()):
        wl = max(steady[name], key=lambda w: abs(steady[name][w] - 1))
        how = "costs" if cost > 1 else "measured faster than bare metal (noise or caching):"
        parts.append(f"{name} {how} {cost:.2f}x bare metal on {wl}.")
    return " ".join(parts)


def _precision_line(rows: list[Row], study: Study) -> str:
    """How fine a difference this run could resolve: the typical width of the steady intervals."""
    widths = sorted(
        (r.ratio.high - r.ratio.low) / 2 / r.ratio.value
        for r in rows
        if r.ratio is not None and r.workload != "startup" and r.ratio.value > 0
    )
    if not widths:
        return ""
    typical = widths[len(widths) // 2]
    if typical <= DECISIVE:
        return ""
    load = study.environment.get("load average at end", "?")
    return (
        f"Caveat: this run resolves differences of about ±{typical:.0%} only (median half-width of the "
        f"95 % intervals on steady workloads; load average {load} at the end): smaller costs, if any, "
        "are hidden in the noise. More repetitions (--repeat) or a quieter machine narrow it."
    )


def _startup_line(start: dict[str, float], baseline: str) -> str:
    if not start:
        return ""
    ordered = sorted((v, k) for k, v in start.items() if k != baseline)
    if not ordered:
        return ""
    cells = ", ".join(f"{k} {v * 1000:.0f} ms" for v, k in ordered)
    base = start.get(baseline)
    base_txt = f" (bare metal {base * 1000:.1f} ms)" if base else ""
    return f"Start-up latency is where they differ{base_txt}: {cells}."


def _docker_line(study: Study, steady: dict[str, dict[str, float]], start: dict[str, float]) -> str:
    by_name = {s.name: s for s in study.systems}
    docker = by_name.get("docker")
    hpc_ok = [n for n in HPC if n in steady]
    if docker is None:
        return ""
    if not docker.available:
        return (
            f"Docker itself could not be measured here ({docker.why}); the comparison rests on the "
            "runtimes that share its machinery (runc, podman) and on the feature matrix: the daemon, "
            "root, and whether the batch system's memory cap still applies to the payload."
        )
    if not hpc_ok:
        return "No HPC runtime (apptainer/singularity/charliecloud/shifter) ran here to compare Docker with."
    parts = [f"Docker against {', '.join(hpc_ok)}:"]
    if "docker" in start and all(n in start for n in hpc_ok):
        others = ", ".join(f"{n} {start[n] * 1000:.0f} ms" for n in hpc_ok)
        parts.append(f"start-up {start['docker'] * 1000:.0f} ms vs {others};")
    cost = {
        n: max(steady[n].values(), key=lambda c: abs(c - 1)) for n in ("docker", *hpc_ok) if steady.get(n)
    }
    if cost:
        parts.append("worst steady-state cost " + ", ".join(f"{n} {c:.2f}x" for n, c in cost.items()) + ".")
    feats = {row["runtime"]: row for row in study.features}
    if "docker" in feats:
        row = feats["docker"]
        cells = [f"{key}: {row[key]}" for key in FEATURES_FOR_ANSWER if key in row]
        parts.append("What Docker brings along, as measured: " + "; ".join(cells) + ".")
    return " ".join(parts)


def _gpu_line(study: Study, rows: list[Row]) -> str:
    gpu = next((w for w in study.workloads if w.name == "gpu"), None)
    if gpu is None:
        return ""
    if gpu.why:
        return f"The GPU workload could not run on this machine ({gpu.why})."
    ran = sorted(r.system for r in rows if r.workload == "gpu" and r.summary and r.system != study.baseline)
    failed = sorted(r.system for r in rows if r.workload == "gpu" and not r.summary)
    parts = [f"GPU: the kernel ran inside {', '.join(ran) or 'no runtime'}"]
    if failed:
        parts.append(f"but not inside {', '.join(failed)} (see the error rows)")
    return " ".join(parts) + "."


def table_text(written: report.Written) -> str:
    """The overhead matrix from the written Markdown (what the CLI prints at the end)."""
    text = written.markdown.read_text()
    return text[text.index("## Overhead per workload") : text.index("## Measurements")].strip()


def answer_text(written: report.Written) -> str:
    """The report's opening answer (between the question and the plot or first section)."""
    text = written.markdown.read_text()
    body = text.split("**\n", 1)[1]
    ends = [i for i in (body.find("![overhead]"), body.find("\n## ")) if i >= 0]
    return body[: min(ends)].strip() if ends else body.strip()


def summary(written: report.Written) -> dict[str, Any]:
    """What ``--json`` prints: the written paths, the answer and one entry per measured row."""
    rows = []
    for r in summary_rows(Study.load(written.json)):
        row: dict[str, Any] = {
            "workload": r.workload,
            "system": r.system,
            "n_ok": r.n_ok,
            "n_failed": r.n_failed,
        }
        row["median_s"] = r.summary.median if r.summary else None
        if r.ratio is not None:
            row.update(
                ratio=r.ratio.value, low=r.ratio.low, high=r.ratio.high, significant=r.ratio.significant
            )
        row["error"] = r.error
        rows.append(row)
    paths = {"markdown": written.markdown, "html": written.html, "json": written.json}
    return {
        **{k: str(v) for k, v in paths.items()},
        "plots": [str(p) for p in written.plots],
        "answer": answer_text(written),
        "rows": rows,
    }
