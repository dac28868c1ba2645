"""Grid storage on the real Slurm: the wrapper on the node moves the bytes (xrdcp, SigV4 S3).

slurmd runs in the main network namespace; it reaches the XRootD server (in its own
namespace) through the loopback-only relay, and moto on 127.0.0.1, as a worker node reaches
its site's storage. The storage settings travel as the site's wrapper settings
(COPS_PILOT_S3_*, exported by name with ``sbatch --export``), never in the job.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.slurm.backend import SlurmBackend, SlurmSettings
from computeops_grid.jobs import exit_codes
from computeops_grid.jobs.state import JobState
from tests.services.grid_jobs import pilot_file, record, settle, submit_ok
from tests.services.slurm import SlurmCluster, world_dir
from tests.services.xrootd import S3, XRootD, adler32
from tests.storage.conftest import BUCKET

pytestmark = [pytest.mark.service, pytest.mark.slow]

SCRIPT = "cat in.txt > hist-1.root; echo slurm >> hist-1.root; echo summary > summary.txt"


def stored(*entries: dict[str, str]) -> Any:
    """``outputs:`` entries with a destination, as a job file gives them (mappings)."""
    return list(entries)


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster, grid_images: Path) -> Iterator[SlurmBackend]:
    jobs_dir = world_dir("cops-slurm-storage-")
    context = BackendContext(home=jobs_dir, jobs_dir=jobs_dir, image_root=grid_images, pilot=pilot_file())
    yield SlurmBackend(SlurmSettings(slurm_conf=str(slurm_cluster.conf)), context)
    shutil.rmtree(jobs_dir, ignore_errors=True)


def test_slurm_job_reads_xrootd_writes_xrootd_and_s3_and_a_refusal_keeps_the_output(
    slurm: SlurmBackend, xrootd: XRootD, storage_env: S3, tmp_path: Path
) -> None:
    source = xrootd.put("/store/data/slurm/in.txt", b"slurm input\n")
    good = record(SCRIPT, name="good", inputs=[source], outputs=stored(
        {"path": "hist-*.root", "to": f"{xrootd.url}//store/user/slurm/"},
        {"path": "summary.txt", "to": f"s3://{BUCKET}/slurm/summary.txt"},
    ))  # fmt: skip
    refused = record(SCRIPT, name="refused", inputs=[source], outputs=stored(
        {"path": "hist-*.root", "to": f"{xrootd.url}//store/readonly/slurm/"},
    ))  # fmt: skip
    submit_ok(slurm, [good, refused])
    states = settle(slurm, [good, refused], timeout=120)
    assert states == {good.id: JobState.COMPLETED, refused.id: JobState.FAILED}, slurm.logs(refused)

    hist = xrootd.path("/store/user/slurm/hist-1.root").read_bytes()
    assert hist == b"slurm input\nslurm\n"
    assert (
        storage_env.client().get_object(Bucket=BUCKET, Key="slurm/summary.txt")["Body"].read() == b"summary\n"
    )
    assert good.workdir is not None
    report = json.loads((good.workdir / "cops-report.json").read_text())
    checks = {e["path"]: e["checksum"] for e in report["stage_out"]}
    assert checks["hist-1.root"] == {"algorithm": "adler32", "local": adler32(hist), "remote": adler32(hist)}
    assert checks["summary.txt"]["remote"] == checks["summary.txt"]["local"]

    info = slurm.status([refused])[refused.id]
    assert info.exit_code == exit_codes.code("stage-out-failed")
    assert "stage-out-failed" in info.message and "cops-grid logs" in info.message
    url = f"{xrootd.url}//store/readonly/slurm/hist-1.root"
    assert f"output hist-1.root to {url} (refused)" in slurm.logs(refused)
    fetched = {p.name for p in slurm.fetch_outputs(refused, tmp_path / "refused")}
    assert "hist-1.root" in fetched  # kept in the sandbox: `cops-grid get` returns it
    assert refused.workdir is not None
    bad_report = json.loads((refused.workdir / "cops-report.json").read_text())
    assert bad_report["payload_exit_code"] == 0
