"""kill -9 of the CLI in the middle of a bulk submit, then `sync`: every job exactly once."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Cli

N = 200


def count(db: Path, where: str) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=30)
    try:
        return int(con.execute(f"SELECT count(*) FROM jobs WHERE {where}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


@pytest.mark.slow
def test_kill_minus_9_during_bulk_submit_then_sync_runs_each_job_once(cli: Cli, tmp_path: Path) -> None:
    job = tmp_path / "bulk.yaml"
    # each run appends to runs.txt in the job's own work dir: a second run would add a line
    job.write_text(
        "name: bulk-${i}\nimage: docker://busybox:latest\ncommand: sh\n"
        "arguments: [-c, 'echo run-${i} >> runs.txt; cat runs.txt']\n"
        f"parameters:\n  i: {{start: 0, stop: {N - 1}}}\n"
    )
    db = cli.home / "jobs.sqlite"
    proc = subprocess.Popen(
        cli.argv("submit", str(job)), env={**__import__("os").environ, "COPS_GRID_HOME": str(cli.home)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    local = cli.home / "jobs" / "local"

    def accepted() -> int:
        return len([d for d in local.iterdir() if not d.name.startswith(".")]) if local.is_dir() else 0

    deadline = time.time() + 120
    while accepted() < 30 and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    accepted_before = accepted()
    assert 0 < accepted_before < N, "the kill should land in the middle of the bulk submit"
    recorded_before = count(db, "state NOT IN ('new', 'submitting')")
    assert recorded_before < accepted_before  # some accepted jobs were not recorded: the crash window

    result = cli("sync", "--json", timeout=600)
    assert result.code == 0, result.stderr
    summary = result.json()
    assert isinstance(summary, dict)
    assert summary["found"] == accepted_before - recorded_before  # found by lookup, not resubmitted
    assert recorded_before + summary["found"] + summary["submitted"] == N

    deadline = time.time() + 600
    while count(db, "state IN ('completed','failed','cancelled')") < N and time.time() < deadline:
        cli("status", "--json")
        time.sleep(1)
    rows = cli("list", "--json").json()
    assert isinstance(rows, list)
    assert len(rows) == N
    assert {r["state"] for r in rows} == {"completed"}
    assert sorted(r["name"] for r in rows) == sorted(f"bulk-{i}" for i in range(N))
    jobdirs = [d for d in (cli.home / "jobs" / "local").iterdir() if not d.name.startswith(".")]
    assert sorted(d.name for d in jobdirs) == sorted(r["id"] for r in rows)  # one directory per job
    for row in rows:
        runs = (cli.home / "jobs" / "local" / row["id"] / "work" / "runs.txt").read_text().splitlines()
        assert runs == [f"run-{row['name'].split('-')[1]}"]  # ran exactly once
