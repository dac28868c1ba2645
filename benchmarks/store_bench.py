"""Job store cost: recording 10,000 submissions, and `list` over them; `list --json` of 100,000.

Goals: (issue 2) under 1 ms per job recorded (added, claimed, recorded as accepted, as
`cops-grid submit` does), `cops-grid list` of 10,000 jobs under 1 s; the reference is bare
SQLite doing the same inserts in the same run. (issue 20) `cops-grid list --json` of 100,000
jobs under 2 s as a whole process, beside its floors: the sqlite3 CLI printing the same
columns as JSON, and a bare Python process reading them with sqlite3 into JSON.

    python benchmarks/store_bench.py            # run it twice on a shared machine
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
BIG = 100_000
COLUMNS = "id, name, backend, state, native_id, bulk_id, idx, exit_code, message, created, updated"
BARE_PY = f"""
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.row_factory = sqlite3.Row
rows = db.execute("SELECT {COLUMNS} FROM jobs ORDER BY created, id").fetchall()
sys.stdout.write(json.dumps([dict(r) for r in rows]) + "\\n")
"""


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


def process(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall time of a whole process, and how many bytes it printed."""
    t0 = time.perf_counter()
    out = subprocess.run(argv, env=env, capture_output=True, check=True)
    return time.perf_counter() - t0, len(out.stdout)


def big_list() -> None:
    """`list --json` of 100,000 jobs (as a sweep leaves them: one bulk, queued), twice each."""
    tmp = Path(tempfile.mkdtemp())
    spec = JobSpec(name="sweep", image="docker://busybox:latest", command="sh", arguments=["-c", "true"])
    store = JobStore(tmp / "jobs.sqlite")
    t0 = time.perf_counter()
    for start in range(0, BIG, 10_000):  # as a 10,000-job sweep records itself
        chunk = [
            JobRecord(id=f"{i:012x}", spec=spec, backend="slurm", bulk_id=f"b{start}", index=i - start)
            for i in range(start, start + 10_000)
        ]
        store.add(chunk)
        store.claim_ids([r.id for r in chunk])
        store.transitions((r.id, JobState.QUEUED, "", None, f"{start}_{r.index}", None) for r in chunk)
    recorded = time.perf_counter() - t0
    t0 = time.perf_counter()
    active = store.records(states=[JobState.QUEUED])  # what `status`/`wait` read per poll
    polled = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.transitions((r.id, JobState.QUEUED, "", None, None, None) for r in active)  # a poll: no change
    unchanged = time.perf_counter() - t0
    store.close()
    env = {**os.environ, "COPS_GRID_HOME": str(tmp)}
    db = str(tmp / "jobs.sqlite")
    runs = {
        "`cops-grid list --json` (whole process)": [sys.executable, "-m", "computeops_grid.cli.main", "list", "--json"],
        "floor: sqlite3 CLI -json, same columns": ["sqlite3", "-json", db, f"SELECT {COLUMNS} FROM jobs ORDER BY created, id"],
        "floor: python3 + sqlite3 -> json.dumps": [sys.executable, "-c", BARE_PY, db],
        "floor: python3 -c pass (interpreter start)": [sys.executable, "-c", "pass"],
    }  # fmt: skip
    print(f"\njobs: {BIG} (recorded as 10 sweeps of 10,000 in {recorded:.2f} s)")
    print(f"{'status/wait poll: read 100,000 active records':46} {polled:.3f} s")
    print(f"{'status/wait poll: record 100,000 unchanged':46} {unchanged:.3f} s")
    for what, argv in runs.items():
        times = [process(argv, env) for _ in range(2)]
        shown = "  ".join(f"{t:.3f} s" for t, _ in times)
        print(
            f"{what:46} {shown}  ({times[0][1] / 1e6:.1f} MB)" + ("  (goal < 2 s)" if "cops" in what else "")
        )


if __name__ == "__main__":
    main()
    big_list()
