# ruff: noqa: PLR0917  (typer declares options as argument defaults)
"""`cops-grid bench ...`: measured comparisons (container runtimes; orchestrators)."""

from __future__ import annotations

from pathlib import Path

import typer

from computeops_grid.bench import runtime_study
from computeops_grid.bench.results import Measurement
from computeops_grid.bench.runtimes import DEFAULT_RUNTIMES
from computeops_grid.cli.output import info, out, print_json, want_json

QUICK_REPEATS = 5
FULL_REPEATS = 10  # the full study takes ~8 min on 2 loaded cores: room for tighter intervals
app = typer.Typer(
    help="Benchmarks that the tool runs itself and reports with statistics.", no_args_is_help=True
)


@app.command("runtimes")
def runtimes(
    runtimes: str = typer.Option(
        ",".join(DEFAULT_RUNTIMES),
        "--runtimes",
        help="Comma-separated runtimes to compare with bare metal; those that cannot run get a why-row.",
    ),
    repeat: int = typer.Option(
        0,
        "--repeat",
        "-n",
        min=0,
        help="Repetitions per workload and system (>=5 for intervals); default 5 with --quick, else 10.",
    ),
    out_dir: Path = typer.Option(Path("bench-runtimes"), "--out", "-o", help="Directory for the report."),
    quick: bool = typer.Option(False, "--quick", help="Small problem sizes: the whole study in minutes."),
    workloads: str = typer.Option(
        "", "--workloads", help="Comma-separated subset of workloads (default: all)."
    ),
    no_features: bool = typer.Option(False, "--no-features", help="Skip the feature matrix."),
    rootless_user: str = typer.Option(
        "nobody", "--rootless-user", help="Unprivileged account that the 'works rootless' check runs as."
    ),
    max_repeat: int = typer.Option(
        40,
        "--max-repeat",
        min=1,
        help="Full runs: cap on repetitions when resolving ±3 % on steady workloads.",
    ),
    resolve_budget: float = typer.Option(
        1200.0, "--resolve-budget", min=0.0, help="Full runs: seconds at most spent on the extra repetitions."
    ),
    interop: bool = typer.Option(
        False, "--interop", help="Also run the Docker -> Singularity interoperability experiment."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the written paths and summary as JSON."),
) -> None:
    """Run the same workloads bare-metal and under every runtime; write report.md/.html/.json.

    A full run (without --quick) computes from its first pass how many repetitions ±3 % needs on
    each steady workload and runs them, within --max-repeat and --resolve-budget."""
    repeat = repeat or (QUICK_REPEATS if quick else FULL_REPEATS)
    options = runtime_study.Options(
        out=out_dir,
        runtimes=[r.strip() for r in runtimes.split(",") if r.strip()],
        repeats=repeat,
        quick=quick,
        workloads=[w.strip() for w in workloads.split(",") if w.strip()] or None,
        with_features=not no_features,
        rootless_user=rootless_user,
        resolve=not quick,
        max_repeats=max(max_repeat, repeat),
        resolve_budget_s=resolve_budget,
        interop=interop,
    )

    def progress(m: Measurement) -> None:
        state = f"{m.value:.4f}" if m.value is not None else f"FAILED {m.error[:80]}"
        info(f"[{m.rep + 1}/{repeat}] {m.workload:<14} {m.system:<13} {state}")

    written = runtime_study.run(options, progress=progress)
    if want_json(as_json):
        print_json(runtime_study.summary(written))
        return
    out.print(runtime_study.table_text(written), markup=False)
    out.print(f"\nReport: {written.markdown}  {written.html}  (raw data {written.json})", markup=False)


@app.command("orchestrators")
def orchestrators(
    out_dir: Path = typer.Option(
        Path("bench-orchestrators"), "--out", "-o", help="Directory for the report."
    ),
    quick: bool = typer.Option(False, "--quick", help="N = 1 and 50 jobs only: the whole study in minutes."),
    repeat: int = typer.Option(0, "--repeat", "-n", min=0, help="Repetitions per size (default per size)."),
    docker_host: str = typer.Option(
        "", "--docker-host", help="Swarm manager API (default: a private dockerd)."
    ),
    slurm_conf: str = typer.Option(
        "",
        "--slurm-conf",
        help="slurm.conf of a Slurm to include (default: $SLURM_CONF or Slurm's own; when none "
        "answers, a private single-node Slurm is started if its daemons are installed).",
    ),
    slurm_cpus: int = typer.Option(
        64, "--slurm-cpus", min=1, help="CPUs the private Slurm declares (more jobs start at once)."
    ),
    kubeconfig: str = typer.Option("", "--kubeconfig", help="kubeconfig of a cluster to include."),
    htcondor_ce: str = typer.Option(
        "", "--htcondor-ce", help="An HTCondor-CE to include, HOST[:PORT] (token: WLCG discovery)."
    ),
    htcondor_ce_ca: str = typer.Option("", "--htcondor-ce-ca", help="CA file of the CE's host certificate."),
    htcondor_ce_image_root: str = typer.Option(
        "", "--htcondor-ce-image-root", help="Image repository on the CE's worker nodes (default: CVMFS)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the written paths and summary as JSON."),
) -> None:
    """N short container jobs, a killed job, an over-limit job and a GPU job on every orchestrator here."""
    from computeops_grid.bench import orchestrators as orch  # noqa: PLC0415 - loads docker/kubernetes clients

    options = orch.Options(
        out=out_dir, quick=quick, repeats=repeat, docker_host=docker_host or None,
        slurm_conf=slurm_conf or None, slurm_cpus=slurm_cpus, kubeconfig=kubeconfig or None,
        htcondor_ce=htcondor_ce or None, htcondor_ce_ca=htcondor_ce_ca or None,
        htcondor_ce_image_root=htcondor_ce_image_root or None,
    )  # fmt: skip

    def progress(m: Measurement) -> None:
        state = f"{m.value:.4f}" if m.value is not None else f"FAILED {m.error[:80]}"
        info(f"[{m.rep + 1}] {m.workload:<16} {m.system:<11} {state}")

    written = orch.run(options, progress=progress)
    if want_json(as_json):
        print_json(runtime_study.summary(written))
        return
    out.print(orch.table_text(written), markup=False)
    out.print(f"\nReport: {written.markdown}  {written.html}  (raw data {written.json})", markup=False)
