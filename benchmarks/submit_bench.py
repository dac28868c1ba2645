"""Client-side submit time: cops-grid against the reference tools, in the same run.

Goals (issues 7 and 20):
* Slurm, 10,000 jobs recorded in the store (a 10,000-element parametric job file through
  the logic layer, as ``cops-grid submit`` runs it): under 2 s in total with the test Slurm's
  default ``MaxArraySize`` (1001, so 10 arrays). The floor is the same arrays by hand:
  ``sbatch --array=0-1000 --wrap true`` as many times as MaxArraySize needs. The 1,000-job
  row of issue 7 is kept beside its own floor (``sbatch --array=1-1000``).
* ARC, 100 jobs to the local A-REX over REST (delegation, one bulk POST, wrapper uploads,
  store): under 20 ms per job and faster than ``arcsub`` of the same 100 descriptions.
* DiracX row from ``benchmarks/submit_bench_diracx.py`` when its server can start.

Real services from ``tests/services`` (single-node Slurm, A-REX on that Slurm). Every
Slurm job is submitted held (``--hold``) and cancelled afterwards, and the ARC jobs are
killed, so the machine does not run 3,000 payloads after measuring their submission.

    python benchmarks/submit_bench.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from computeops_grid import worker  # noqa: E402
from computeops_grid.backends.arc import desc as arc_desc  # noqa: E402
from computeops_grid.backends.arc.delegation_cache import DelegationCache  # noqa: E402
from computeops_grid.backends.arc.rest import ArcRest  # noqa: E402
from computeops_grid.backends.common.payload import PILOT_FILE  # noqa: E402
from computeops_grid.jobs.loader import load_jobs  # noqa: E402
from computeops_grid.jobs.record import JobRecord  # noqa: E402
from computeops_grid.logic.session import Session  # noqa: E402
from computeops_grid.logic.submit import records_from_files, submit_records  # noqa: E402
from tests.services.arc import CERTS, ArcCE, start_arc  # noqa: E402
from tests.services.slurm import SlurmCluster, start_slurm, world_dir  # noqa: E402

Row = dict[str, Any]
JOB = """name: bench-${{i}}
image: docker://busybox:latest
command: sh
arguments: [-c, 'echo ${{i}}']
parameters:
  i: {{start: 1, stop: {n}}}
resources: {{cores: 1, memory: 256MiB, walltime: 600}}
"""


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def cops_submit(home: Path, backend: str, settings: dict[str, Any], n: int) -> tuple[float, list[str]]:
    """The logic layer as ``cops-grid submit job.yaml --backend NAME`` runs it (load, store, submit)."""
    home.mkdir(parents=True)
    (home / "config.yaml").write_text(json.dumps({"backends": {backend: settings}}))
    job_file = home / "job.yaml"
    job_file.write_text(JOB.format(n=n))
    os.environ["COPS_GRID_HOME"] = str(home)
    t0 = time.perf_counter()
    with Session.open() as session:
        records = records_from_files([job_file], session, backend)
        report = submit_records(session, records)
        natives = [r.native_id or "" for r in session.store.get_many(report.submitted)]
    elapsed = time.perf_counter() - t0
    if not report.ok or len(report.submitted) != n:
        raise RuntimeError(f"cops-grid submitted {len(report.submitted)}/{n}: {report}")
    return elapsed, natives


def slurm_rows(slurm: SlurmCluster, tmp: Path, sizes: tuple[int, ...] = (1000, 10_000)) -> list[Row]:
    def run(argv: list[str]) -> str:
        proc = subprocess.run(argv, env=slurm.env, capture_output=True, text=True, check=True, cwd=tmp)
        return proc.stdout

    def by_hand(n: int, max_size: int) -> None:
        for start in range(0, n, max_size):
            run([*sbatch, f"--array=0-{min(n - start, max_size) - 1}", "--wrap", "true"])

    sbatch = ["sbatch", "--parsable", "--hold", "-o", "/dev/null"]
    config = run(["scontrol", "show", "config"])
    max_size = next(
        int(line.split("=")[1]) for line in config.splitlines() if line.startswith("MaxArraySize")
    )
    rows: list[Row] = []
    for n in sizes:
        floor, _ = timed(by_hand, n, max_size)
        run(["scancel", "-u", "root"])
        settings = {
            "slurm_conf": str(slurm.conf),
            "sbatch_options": ["--hold"],
            "jobs_dir": str(world_dir("bench-")),
        }
        ours, natives = cops_submit(tmp / f"home-slurm-{n}", "slurm", settings, n)
        run(["scancel", "-u", "root"])
        assert len(set(natives)) == n
        arrays = len({x.split("_")[0] for x in natives})
        rows += [
            {"backend": "slurm", "tool": f"{arrays} x sbatch --array (floor)", "jobs": n, "s": floor},
            {"backend": "slurm", "tool": f"cops-grid submit (store + {arrays} arrays)", "jobs": n, "s": ours,
             "times_floor": ours / floor, "goal": "< 2 s"},
        ]  # fmt: skip
    return rows


def arcsub(ce: ArcCE, proxy: Path, tmp: Path, n: int) -> float:
    """``arcsub`` of the same descriptions (xRSL, wrapper uploaded by arcsub) in one call."""
    job_file = tmp / "arcsub-job.yaml"
    job_file.write_text(JOB.format(n=n))
    opts = arc_desc.DescOptions(queue=ce.queue, image_root="/srv/images")
    args = ["arcsub", "-C", ce.url, "-T", "arcrest", "-j", str(tmp / "jobs.dat")]
    for i, job in enumerate(load_jobs([job_file])):
        record = JobRecord(id=f"arcsub{i:06d}", spec=job.spec, backend="arc")
        sources = {
            PILOT_FILE: str(worker.pilot()),
            arc_desc.LAUNCHER_FILE: str(worker.path(worker.DIRAC_LAUNCHER)),
        }
        (tmp / f"{i}.xrsl").write_text(arc_desc.xrsl(record, opts, sources=sources))
        args += ["-f", str(tmp / f"{i}.xrsl")]
    env = {**os.environ, "X509_USER_PROXY": str(proxy), "X509_CERT_DIR": str(CERTS), "HOME": str(tmp)}
    t0 = time.perf_counter()
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    submitted = proc.stdout.count("Job submitted with jobid")
    if submitted != n:
        raise RuntimeError(f"arcsub submitted {submitted}/{n}: {proc.stderr[-500:]}")
    return elapsed


def arc_rows(ce: ArcCE, tmp: Path, n: int = 100) -> list[Row]:
    proxy = ce.proxy("bench")
    settings = {
        "ce": ce.url, "proxy": str(proxy), "ca_dir": str(CERTS), "queue": ce.queue,
        "image_root": "/srv/images", "transport": "rest",
    }  # fmt: skip
    ours, _ = cops_submit(tmp / "home-arc", "arc", settings, n)
    delegations = DelegationCache(tmp / "delegations.json")  # a later submission's delegation
    fresh, _ = timed(ArcRest(ce.url, proxy, str(CERTS), delegations=delegations).delegate)
    kept, _ = timed(ArcRest(ce.url, proxy, str(CERTS), delegations=delegations).delegate)
    reference = arcsub(ce, proxy, tmp, n)
    rest = ArcRest(ce.url, proxy, str(CERTS))
    rest.kill(rest.list_jobs())  # nothing of this needs to run
    return [
        {"backend": "arc", "tool": f"arcsub of the same {n} descriptions", "jobs": n, "s": reference},
        {"backend": "arc", "tool": "cops-grid submit (REST + store)", "jobs": n, "s": ours,
         "vs_arcsub": reference / ours, "goal": "< 20 ms/job, faster than arcsub"},
        {"backend": "arc", "tool": "a new delegation (each cold submission)", "jobs": 1, "s": fresh},
        {"backend": "arc", "tool": "a later submission's kept delegation", "jobs": 1, "s": kept},
    ]  # fmt: skip


def diracx_rows() -> list[Row]:
    try:
        from benchmarks.submit_bench_diracx import diracx_rows as rows  # noqa: PLC0415 - optional
    except ImportError as exc:
        return [{"backend": "diracx", "tool": f"not run: {exc}"}]
    try:
        return [{**r, "s": float(str(r["ms_per_job"])) * int(str(r["jobs"])) / 1000} for r in rows()]
    except Exception as exc:  # a server that cannot start here is reported, not fatal
        return [{"backend": "diracx", "tool": f"not run: its server did not start ({exc})"[:160]}]


def show(rows: list[Row]) -> None:
    print(f"{'backend':8} {'what':42} {'jobs':>5} {'total s':>8} {'ms/job':>8}  ratio / goal")
    for r in rows:
        if "s" not in r:
            print(f"{r['backend']:8} {r['tool']}")
            continue
        ratio = next((f"{v:.1f}x {k.replace('_', ' ')}" for k, v in r.items() if k.startswith("vs_")), "")
        if "times_floor" in r:
            ratio = f"{r['times_floor']:.1f}x the floor's time"
        if "ratio_vs_bare" in r:
            ratio = f"{r['ratio_vs_bare']:.2f}x the bare client's time"
        goal = f"  (goal {r['goal']})" if "goal" in r else ""
        print(
            f"{r['backend']:8} {r['tool']:42} {r['jobs']:>5} {r['s']:8.3f} {1000 * r['s'] / r['jobs']:8.2f}  {ratio}{goal}"
        )


def main() -> None:
    """``submit_bench.py [slurm] [arc] [diracx]``: all three when none is named."""
    wanted = set(sys.argv[1:]) or {"slurm", "arc", "diracx"}
    if not shutil.which("sbatch") or ("arc" in wanted and not shutil.which("arcsub")):
        sys.exit("needs Slurm and the ARC client tools (etc/deps/apt-grid.txt)")
    tmp = Path(tempfile.mkdtemp(prefix="submit-bench-"))
    slurm = start_slurm()
    ce = None
    rows: list[Row] = []
    try:
        if "slurm" in wanted:
            rows += slurm_rows(slurm, tmp)
        if "arc" in wanted:
            ce = start_arc(slurm)
            rows += arc_rows(ce, tmp)
    finally:
        if ce is not None:
            ce.stop()
        slurm.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if "diracx" in wanted:
        rows += diracx_rows()
    show(rows)


if __name__ == "__main__":
    main()
