"""DiracX row of the submit benchmark: client time per job for 200 jobs against a local DiracX.

Goal (issue 8): under 10 ms per job including the job store, measured against the bare
API calls (the same 200 JDLs through ``diracx-client`` in batches of 20, with one
pre-uploaded sandbox) in the same run. The unchanged sandbox must be uploaded once.
The server (tests/services/diracx.py) runs on this machine, so both sides share its cost.

    python benchmarks/submit_bench_diracx.py        # prints the rows
``diracx_rows()`` returns them for benchmarks/submit_bench.py.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from computeops_grid import worker  # noqa: E402
from computeops_grid.backends.common.sandbox import build_archive  # noqa: E402
from computeops_grid.backends.dirac import diracx_client, jdl  # noqa: E402
from computeops_grid.backends.dirac.diracx_client import DiracXClient  # noqa: E402
from computeops_grid.config import Config  # noqa: E402
from computeops_grid.jobs.model import JobSpec  # noqa: E402
from computeops_grid.jobs.record import JobRecord  # noqa: E402
from computeops_grid.logic.session import Session  # noqa: E402
from computeops_grid.logic.submit import new_id, submit_records  # noqa: E402
from tests.services.diracx import DiracXServer  # noqa: E402

N = 200
SPEC = JobSpec(name="bench", image="docker://busybox:latest", command="sh", arguments=["-c", "true"])


def bare_api(server: DiracXServer, creds: Path) -> float:
    """Seconds for the bare client calls: one sandbox upload, 10 submit calls of 20 JDLs."""
    records = [JobRecord(id=new_id(), spec=SPEC, backend="diracx") for _ in range(N)]
    with DiracXClient(server.url, creds) as client:
        _ = client.api  # connected, as the cops-grid side is
        start = time.perf_counter()
        files = [
            ("cops_pilot.py", worker.pilot()),
            ("cops_dirac_launch.py", worker.path(worker.DIRAC_LAUNCHER)),
        ]
        pfn = client.upload(build_archive(files))
        texts = [jdl.single_jdl(r, [pfn], jdl.JdlOptions()) for r in records]
        build = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(0, N, 20):
            client.api.jobs.submit_jdl_jobs(texts[i : i + 20])
        return time.perf_counter() - start + build


def cops(server: DiracXServer, creds: Path, home: Path) -> tuple[float, int]:
    """Seconds for cops-grid's submit path (store + JDL + sandbox + batched calls), uploads made."""
    os.environ["COPS_GRID_HOME"] = str(home)
    diracx_client._uploaded.clear()  # no help from the bare run's process-wide cache
    config = Config(backends={"diracx": {"url": server.url, "credentials": str(creds)}})
    with Session.open(config) as session:
        backend = session.backend("diracx")
        _ = backend.client.api  # type: ignore[attr-defined]  # connected before timing, as above
        uploads = []
        real = backend.client.upload  # type: ignore[attr-defined]
        backend.client.upload = lambda a: uploads.append(a.checksum) or real(a)  # type: ignore[attr-defined]
        records = [JobRecord(id=new_id(), spec=SPEC, backend="diracx") for _ in range(N)]
        start = time.perf_counter()
        report = submit_records(session, records)
        elapsed = time.perf_counter() - start
        assert len(report.submitted) == N, report
        return elapsed, len(uploads)


def diracx_rows() -> list[dict[str, object]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-diracx-"))
    server = DiracXServer(tmp / "server").start()
    try:
        creds = server.write_credentials(tmp / "alice.json")
        bare_api(server, creds)  # warm-up: server caches, first-call costs
        bare = bare_api(server, creds)
        ours, uploads = cops(server, creds, tmp / "home")
    finally:
        server.stop()
    return [
        {"backend": "diracx", "tool": "bare diracx-client", "jobs": N, "ms_per_job": 1000 * bare / N},
        {
            "backend": "diracx", "tool": "cops-grid submit", "jobs": N, "ms_per_job": 1000 * ours / N,
            "ratio_vs_bare": ours / bare, "sandbox_uploads": uploads,
        },
    ]  # fmt: skip


def main() -> None:
    for row in diracx_rows():
        print("  ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
