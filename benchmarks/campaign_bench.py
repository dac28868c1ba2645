"""Campaign cost on the client, per site: planning + bundling + submitting, status, report.

Issue 15 asks for the client-side time of a campaign over hundreds of CEs, printed beside
the number of sites. The sites here cost the client what a real site costs (a plan, a
bundle of the probes and the wrapper, a stored job, a backend call, a report row) but send
nothing anywhere: Slurm resources whose client tools are missing (the job stays retryable)
and resources that do not exist (refused before anything is stored). A CE that refuses
connections costs its backend's retries on top (about 1.5 s with the default policy): the
last table submits to DEAD login nodes whose port is closed (Slurm over SSH; each job is
kept `new`), one site at a time and `--parallel` 8 at a time, in the same run.

    python3 benchmarks/campaign_bench.py [N ...]     # default: 50 200 1000
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

CLI = [sys.executable, "-c", "from computeops_grid.cli.main import run; run()"]


def campaign(path: Path, n: int) -> Path:
    sites = [
        {"name": f"cluster-{i}", "type": "slurm", "bin_dir": "/nonexistent/bin"} for i in range(n * 3 // 4)
    ]
    sites += [{"name": f"gone-{i}", "backend": f"nosuch-{i}"} for i in range(n - len(sites))]
    path.write_text(yaml.safe_dump({"name": f"bench{n}", "sites": sites, "images": [], "walltime": 600}))
    return path


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run([*CLI, *argv], env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.strip()[-500:]}")
    return took, proc.stdout


def measure(n: int, work: Path) -> dict[str, float]:
    home = work / f"home-{n}"
    home.mkdir()
    (home / "config.yaml").write_text("{}\n")  # defaults only, whatever the user configured
    env = {**os.environ, "COPS_GRID_HOME": str(home), "COPS_GRID_CONFIG": str(home / "config.yaml")}
    path = campaign(work / f"campaign-{n}.yaml", n)
    run, out = timed(["validate-site", "run", str(path), "--json"], env)
    assert len(json.loads(out)) == n
    rerun, _ = timed(["validate-site", "run", str(path), "--json"], env)
    status, _ = timed(["validate-site", "status", str(path), "--json"], env)
    report, out = timed(["validate-site", "report", str(path), "--json", "-o", str(work / f"r{n}")], env)
    assert len(json.loads(out)["sites"]) == n
    return {"run": run, "resume": rerun, "status": status, "report": report}


DEAD = 16


def dead_sites(work: Path, parallel: int) -> float:
    """Run a campaign of DEAD Slurm login nodes that refuse connections; seconds taken."""
    home = work / f"home-dead-{parallel}"
    home.mkdir()
    (home / "config.yaml").write_text("{}\n")
    env = {**os.environ, "COPS_GRID_HOME": str(home), "COPS_GRID_CONFIG": str(home / "config.yaml")}
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sites = [
        {"name": f"dead-{i}", "type": "slurm", "ssh": f"nobody@127.0.0.1:{port}", "ssh_config": "/dev/null",
         "remote_jobs_dir": "/tmp/cops-dead"}
        for i in range(DEAD)
    ]  # fmt: skip
    path = work / f"dead-{parallel}.yaml"
    path.write_text(yaml.safe_dump({"name": "dead", "sites": sites, "images": [], "walltime": 600}))
    took, out = timed(["validate-site", "run", str(path), "--json", "--parallel", str(parallel)], env)
    assert all(row["job"] for row in json.loads(out).values())  # stored, kept for the next run
    return took


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [50, 200, 1000]
    with tempfile.TemporaryDirectory(prefix="cops-campaign-bench-") as tmp:
        print(
            f"{'sites':>6} {'run s':>7} {'resume s':>9} {'status s':>9} {'report s':>9} {'run ms/site':>12}"
        )
        for n in sizes:
            t = measure(n, Path(tmp))
            print(
                f"{n:6d} {t['run']:7.2f} {t['resume']:9.2f} {t['status']:9.2f} {t['report']:9.2f}"
                f" {1000 * t['run'] / n:12.1f}"
            )
        one, eight = dead_sites(Path(tmp), 1), dead_sites(Path(tmp), 8)
        print(f"\n{DEAD} dead login nodes: one site at a time {one:.1f} s; --parallel 8: {eight:.1f} s"
              f" ({one / eight:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
