"""`cops-grid bench orchestrators`: the same workload on every orchestrator that runs here.

Every system is driven through its cops-grid backend (what users get): N short
container jobs (``true`` in the busybox image) are submitted in one call and followed
with ``status`` every 0.1 s, giving the time to the first start, the makespan and the
throughput. Then three behaviours are observed: a long job cancelled while running, a
job over its memory limit, a job asking for a GPU. Statistics and the report (Markdown,
HTML with plots, JSON) are the runtime study's (``stats.py``, ``report.py``).
"""

from __future__ import annotations

import logging
import os
import platform
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from computeops_grid import worker
from computeops_grid.backends.base import Backend, BackendContext, Capability, SupportsCancel, SupportsLogs
from computeops_grid.bench import orch_systems as osys
from computeops_grid.bench import report
from computeops_grid.bench.results import Measurement, Study, WorkloadInfo, summary_rows
from computeops_grid.errors import UsageError
from computeops_grid.images.default import ensure_default_image
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord

log = logging.getLogger(__name__)
QUESTION = "Which orchestrator should a computing centre pick to run container jobs?"
BASELINE = "local"
POLL = 0.1
QUICK_SIZES = {1: 5, 50: 1}  # N -> repetitions
FULL_SIZES = {1: 10, 50: 3, 500: 1}
# one 300 MiB buffer filled by one read: quick even under ptrace runtimes (udocker/proot),
# where piping 300 MB through `tr` took minutes
HOG = "dd if=/dev/zero of=/dev/null bs=300M count=1 2>/dev/null && echo survived"


@dataclass(frozen=True)
class Options:
    out: Path
    quick: bool = False
    repeats: int = 0  # 0: the size's default
    docker_host: str | None = None
    slurm_conf: str | None = None
    slurm_cpus: int = 64  # CPUs a private Slurm declares (config_overrides)
    kubeconfig: str | None = None
    timeout: float = 600.0  # per batch
    sizes: dict[int, int] | None = None  # N -> repetitions, overriding --quick/full
    gpu_wait: float = 15.0  # how long a GPU job may stay queued before it is called unschedulable
    htcondor_ce: str | None = None  # an HTCondor-CE to include, host[:port] (token: WLCG discovery)
    htcondor_ce_ca: str | None = None  # CA file its host certificate chains to
    htcondor_ce_image_root: str | None = None  # image repository on its worker nodes (default CVMFS)


def _record(name: str, command: str, args: list[str], **resources: Any) -> JobRecord:
    spec = JobSpec.model_validate(
        {"name": name, "image": "docker://busybox:latest", "command": command, "arguments": args,
         "resources": {"cores": 1, "memory": "64MiB", "walltime": 600, **resources}}
    )  # fmt: skip
    return JobRecord(id=secrets.token_hex(6), spec=spec, backend="bench")


class Measured(Backend, SupportsCancel, SupportsLogs, Protocol):
    """The backends the benchmark measures can cancel and show logs."""


def as_measured(backend: object) -> Measured:
    if not (isinstance(backend, SupportsCancel) and isinstance(backend, SupportsLogs)):
        raise UsageError(f"{backend!r} cannot cancel jobs or show their logs")
    return cast("Measured", backend)


def submit(backend: Measured, jobs: list[JobRecord]) -> list[str | None]:
    """Submit and keep each native id on its record, as ``cops-grid submit`` does.

    Backends find their jobs by that id (Slurm: in ``squeue``); without it a queued or
    running Slurm job is invisible and only its exit file, once written, resolves it.
    Returns the refusal message per job (None where accepted).
    """
    out: list[str | None] = []
    for job, res in zip(jobs, backend.submit(jobs)):
        job.native_id = res.native_id
        out.append(res.error.message if res.error is not None else None)
    return out


def run_batch(backend: Measured, n: int, timeout: float) -> tuple[float, float]:
    """Submit ``n`` short jobs at once; (time to first start, makespan) in seconds."""
    bulk = secrets.token_hex(6)
    jobs = [_record(f"bench-{n}-{i}", "true", []) for i in range(n)]
    for i, job in enumerate(jobs):
        job.bulk_id, job.index = bulk, i
    t0 = time.monotonic()
    refused = [msg for msg in submit(backend, jobs) if msg is not None]
    if refused:
        raise RuntimeError(f"{len(refused)} job(s) refused: {refused[0]}")
    first: float | None = None
    while True:
        infos = backend.status(jobs)
        now = time.monotonic() - t0
        states = [i.state for i in infos.values()]
        if first is None and any(s.value == "running" or s.final for s in states):
            first = now
        if len(states) == n and all(s.final for s in states):
            failed = [j for j in jobs if infos[j.id].state.value != "completed"]
            if failed:
                tail = _log_tail(backend, failed[0])
                raise RuntimeError(
                    f"{len(failed)} job(s) did not complete: {infos[failed[0].id].message}{tail}"
                )
            return (first if first is not None else now), now
        if now > timeout:
            raise RuntimeError(f"not finished after {timeout:.0f} s")
        time.sleep(POLL)


def _log_tail(backend: Measured, job: JobRecord) -> str:
    try:
        text = backend.logs(job).strip()
    except Exception as exc:  # the log only decorates the error
        return f" (no log: {exc})"
    return f" (log: ...{text[-200:]})" if text else ""


def _wait(backend: Measured, job: JobRecord, done: Callable[[Any], bool], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    info = None
    while time.monotonic() < deadline:
        info = backend.status([job]).get(job.id)
        if done(info):
            return info
        time.sleep(POLL)
    return info


def kill_probe(backend: Measured) -> str:
    job = _record("bench-kill", "sleep", ["300"])
    (refused,) = submit(backend, [job])
    if refused is not None:
        return f"not run: {refused[:120]}"
    started = _wait(backend, job, lambda i: i is not None and i.state.value == "running", 120)
    if started is None or started.state.value != "running":
        backend.cancel([job])
        return "never started within 120 s"
    t0 = time.monotonic()
    after = backend.cancel([job]).get(job.id)  # a final answer is the backend's confirmation
    if after is None or not after.state.final:
        after = _wait(backend, job, lambda i: i is None or i.state.final, 60)
    took = time.monotonic() - t0
    if after is None:
        return f"cancelled: gone from the backend {took:.1f} s after cancel"
    return f"{after.state.value} {took:.1f} s after cancel" + (
        f" ({after.message[:80]})" if after.message else ""
    )


def over_limit_probe(backend: Measured) -> str:
    job = _record("bench-oom", "sh", ["-c", HOG], memory="16MiB")
    (refused,) = submit(backend, [job])
    if refused is not None:
        return f"not run: {refused[:120]}"
    info = _wait(backend, job, lambda i: i is not None and i.state.final, 120)
    if info is None or not info.state.final:
        backend.cancel([job])
        return "still not finished after 120 s"
    log_text = ""
    try:
        log_text = backend.logs(job)
    except Exception as exc:  # logs are a bonus here
        log.debug("logs of the over-limit job: %s", exc)
    verdict = "limit NOT enforced (payload survived)" if "survived" in log_text else "limit enforced"
    return f"{info.state.value}, exit {info.exit_code}: {verdict}" + (
        f"; {info.message[:80]}" if info.message else ""
    )


def gpu_probe(backend: Measured, wait: float) -> str:
    job = _record("bench-gpu", "true", [], gpus=1)
    (refused,) = submit(backend, [job])
    if refused is not None:
        return f"refused at submit: {refused[:120]}"
    info = _wait(backend, job, lambda i: i is not None and i.state.final, wait)
    if info is not None and info.state.final:
        return f"{info.state.value}, exit {info.exit_code}" + (
            f": {info.message[:100]}" if info.message else ""
        )
    backend.cancel([job])
    message = f": {info.message[:100]}" if info is not None and info.message else ""
    return f"still {info.state.value if info else 'unknown'} after {wait:.0f} s{message} (cancelled)"


# documented properties (not measurable on one node); each cell says so
DOCUMENTED = {
    "local": {"priorities / fair share": "none (FIFO, max_parallel)",
              "CVMFS in containers": "pilot wrapper binds /cvmfs",
              "failure recovery": "`cops-grid sync` restarts lost runners"},
    "slurm": {"priorities / fair share": "multifactor priority, fair share (documented)",
              "CVMFS in containers": "pilot wrapper binds the node's /cvmfs",
              "failure recovery": "requeue on node failure (documented)"},
    "swarm": {"priorities / fair share": "none (documented: no priorities or queues)",
              "CVMFS in containers": "bind mount of the node's /cvmfs (or a docker volume plugin)",
              "failure recovery": "tasks rescheduled on node loss; replicated-job retries (see gang/array)"},
    "kubernetes": {"priorities / fair share": "PriorityClass; fair share via Kueue/Volcano (documented)",
                   "CVMFS in containers": "hostPath or the CVMFS CSI driver (backend setting)",
                   "failure recovery": "Job controller recreates pods per backoffLimit (documented)"},
    "htcondor-ce": {"priorities / fair share": "the batch system's behind the CE; JobRouter routes by "
                                               "job attributes (documented)",
                    "CVMFS in containers": "pilot wrapper binds the worker node's /cvmfs",
                    "failure recovery": "held jobs keep their reason; the CE keeps finished jobs until "
                                        "their outputs are retrieved (documented)"},
}  # fmt: skip


def feature_row(system: osys.System, probes: dict[str, str]) -> dict[str, str]:
    name = system.info.name
    caps = system.backend.capabilities if system.backend is not None else frozenset()
    arrays = "native arrays" if Capability.ARRAYS in caps else "bulk submit, one native job per element"
    if name == "swarm":
        arrays += " (replicated-job with >1 replica retries failed tasks on Docker 20.10: not used)"
    row = {"system": name, "daemons needed": system.daemons or "—", "root needed": system.root or "—",
           "gang/array jobs": arrays}  # fmt: skip
    row.update(
        {k: f"{v} (documented)" if "documented" not in v else v for k, v in DOCUMENTED.get(name, {}).items()}
    )
    row.update(probes)
    return row


def _workloads(sizes: dict[int, int]) -> list[WorkloadInfo]:
    out = []
    for n in sizes:
        out.append(WorkloadInfo(f"first-start-{n}", f"time from submit to the first of {n} job(s) running"))
        out.append(WorkloadInfo(f"makespan-{n}", f"time from submit until all {n} job(s) ended"))
        out.append(
            WorkloadInfo(f"throughput-{n}", f"{n} job(s) / makespan", unit="jobs/s", lower_is_better=False)
        )
    return out


def measure(systems: Sequence[osys.System], sizes: dict[int, int], opts: Options,
            progress: Callable[[Measurement], None] | None) -> list[Measurement]:  # fmt: skip
    out: list[Measurement] = []
    for n, reps in sizes.items():
        for rep in range(opts.repeats or reps):
            for system in systems:  # interleaved: background load hits every system alike
                assert system.backend is not None
                try:
                    first, span = run_batch(as_measured(system.backend), n, opts.timeout)
                    values = {"first-start": first, "makespan": span, "throughput": n / span}
                    new = [Measurement(system.info.name, f"{k}-{n}", rep, v, span) for k, v in values.items()]
                except Exception as exc:
                    log.warning("%s, %d jobs: %s", system.info.name, n, exc)
                    new = [Measurement(system.info.name, f"{k}-{n}", rep, None, error=str(exc)[:300])
                           for k in ("first-start", "makespan", "throughput")]  # fmt: skip
                out += new
                if progress:
                    for m in new:
                        progress(m)
    return out


def discover(ctx: BackendContext, opts: Options, work: Path) -> list[osys.System]:
    systems = [osys.local_system(ctx), osys.slurm_system(ctx, opts.slurm_conf, opts.slurm_cpus)]
    systems.append(osys.swarm_system(ctx, opts.docker_host, work))
    systems.append(osys.kubernetes_system(ctx, opts.kubeconfig))
    systems.append(osys.kubernetes_system(ctx, opts.kubeconfig))
    systems.append(osys.htcondor_ce_system(ctx, opts.htcondor_ce, opts.htcondor_ce_ca,
                                           opts.htcondor_ce_image_root))  # fmt: skip
    systems += [osys.absent_system(name) for name in osys.ABSENT_CANDIDATES]
    return systems


def run(opts: Options, progress: Callable[[Measurement], None] | None = None) -> report.Written:
    if opts.repeats < 0:
        raise UsageError("--repeat must be at least 1")
    sizes = opts.sizes or (QUICK_SIZES if opts.quick else FULL_SIZES)
    out = opts.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cops-orch-"))  # short: dockerd's exec root lives here
    ctx = BackendContext(home=work, jobs_dir=work / "jobs", image_root=work / "images", pilot=worker.pilot())
    ensure_default_image(ctx.image_root)
    systems = discover(ctx, opts, work)
    try:
        running = [s for s in systems if s.backend is not None]
        measurements = measure(running, sizes, opts, progress)
        features = []
        for system in running:
            backend = as_measured(system.backend)
            probes = {"killed running job": kill_probe(backend),
                      "job over memory limit": over_limit_probe(backend),
                      "GPU job (no GPU here)": gpu_probe(backend, opts.gpu_wait)}  # fmt: skip
            features.append(feature_row(system, probes))
    finally:
        for system in systems:
            system.stop()
        shutil.rmtree(work, ignore_errors=True)
    study = Study(
        title="Orchestrators on this machine: cops-grid bench orchestrators",
        question=QUESTION, baseline=BASELINE, systems=[s.info for s in systems],
        workloads=_workloads(sizes), measurements=measurements, features=features,
        environment=_environment(opts, sizes),
        notes=["Every system is driven through its cops-grid backend; status polled every 0.1 s, "
               "so start times are resolved to ~0.1 s plus one status call.", *_system_notes(systems)],
    )  # fmt: skip
    return report.write(study, out, conclude(study))


def _system_notes(systems: Sequence[osys.System]) -> list[str]:
    """How each measured system was set up (version, nodes, a private cluster's settings)."""
    return [
        f"{s.info.name}: " + "; ".join(x for x in (s.info.version, s.info.detail) if x)
        for s in systems
        if s.info.available
    ]


def _environment(opts: Options, sizes: dict[int, int]) -> dict[str, str]:
    load = os.getloadavg()
    return {"host": platform.node(), "kernel": platform.release(), "cpu cores": str(os.cpu_count()),
            "sizes (N: repetitions)": ", ".join(f"{n}: {opts.repeats or r}" for n, r in sizes.items()),
            "load average at end": " ".join(f"{x:.2f}" for x in load)}  # fmt: skip


def conclude(study: Study) -> str:
    """The answer drawn from the measured rows only."""
    rows = [r for r in summary_rows(study) if r.summary is not None]
    measured = sorted({r.system for r in rows})
    if not measured:
        return "No orchestrator could be measured on this machine, so the data cannot answer."
    lines = [f"Measured here: {', '.join(measured)}; not runnable here: "
             f"{', '.join(s.name for s in study.systems if not s.available)} (reasons below)."]  # fmt: skip
    for wl in ("first-start-1", "makespan-50", "makespan-500"):
        cells = {r.system: r.summary.median for r in rows if r.workload == wl and r.summary}
        if cells:
            ranked = ", ".join(f"{s} {v:.2f} s" for s, v in sorted(cells.items(), key=lambda kv: kv[1]))
            lines.append(f"{wl} (median): {ranked}.")
    lines.append("Pick by features as much as by speed: see the feature matrix (what happened to the killed "
                 "and the over-limit job, GPU scheduling, arrays, recovery).")  # fmt: skip
    return "\n\n".join(lines)


def table_text(written: report.Written) -> str:
    text = written.markdown.read_text()
    return text[text.index("## Measurements") : text.index("## Systems and workloads not measured")].strip()
