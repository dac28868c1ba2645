"""Job store cost: recording 10,000 submissions, and `list` over them.

Goal (issue 2): under 1 ms per job recorded (added, claimed, recorded as accepted, as
`cops-grid submit` does), `cops-grid list` of 10,000 jobs under 1 s. The reference is
bare SQLite doing the same inserts in the same run.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from computeops_grid.jobs.store import JobStore

N = 10_000


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    spec = JobSpec(name="bench", image="docker://busybox:latest", command="sh", arguments=["-c", "true"])
    records = [JobRecord(id=f"{i:012x}", spec=spec, backend="local") for i in range(N)]

    store = JobStore(tmp / "jobs.sqlite")
    t0 = time.perf_counter()
    for start in range(0, N, 100):  # as submit does: chunks of 100
        chunk = records[start : start + 100]
        store.add(chunk)
        store.claim([r.id for r in chunk])
        store.transitions((r.id, JobState.QUEUED, "", None, f"native-{r.id}", None) for r in chunk)
    recorded = time.perf_counter() - t0

    t0 = time.perf_counter()
    rows = store.summaries()
    list_api = time.perf_counter() - t0
    assert len(rows) == N
    store.close()

    env = {**os.environ, "COPS_GRID_HOME": str(tmp)}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "computeops_grid.cli.main", "list", "--json"], env=env,
                         capture_output=True, check=False)  # fmt: skip
    list_cli = time.perf_counter() - t0

    raw = sqlite3.connect(tmp / "raw.sqlite", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, spec TEXT, state TEXT)")
    payload = spec.model_dump_json()
    t0 = time.perf_counter()
    for start in range(0, N, 100):
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(
            "INSERT INTO jobs VALUES (?, ?, 'new')", [(r.id, payload) for r in records[start : start + 100]]
        )
        raw.execute("COMMIT")
    bare = time.perf_counter() - t0

    print(f"jobs: {N}")
    print(
        f"record (add + claim + accepted, chunks of 100): {recorded:.3f} s = {recorded / N * 1e3:.3f} ms/job  (goal < 1 ms)"
    )
    print(
        f"bare sqlite insert of the same rows:            {bare:.3f} s = {bare / N * 1e3:.3f} ms/job  (ratio {recorded / bare:.1f}x)"
    )
    print(f"list (store API):                               {list_api:.3f} s")
    print(
        f"`cops-grid list --json` (whole CLI process):     {list_cli:.3f} s  (goal < 1 s), exit {out.returncode}"
    )


if __name__ == "__main__":
    main()
