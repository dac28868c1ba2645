"""``sacct`` for real: the Slurm backend resolves jobs slurmctld has forgotten from slurmdbd.

The module starts its own Slurm with accounting (mariadbd + slurmdbd on loopback, see
docs/notes/slurmdbd-mariadb.md) and ``MinJobAge=2``, so finished jobs leave ``squeue``
within about 10 s (slurmctld purges old jobs every ~10 s). The jobs' exit-code files
are deleted before asking, so only accounting can tell completed, failed (42) and
cancelled apart; ``sacct`` itself is asked too, so nothing passes without slurmdbd.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.common.jobdir import job_workdir
from computeops_grid.backends.common.payload import REPORT_NAME
from computeops_grid.backends.slurm import status as st
from computeops_grid.backends.slurm.backend import SlurmBackend, SlurmSettings
from computeops_grid.backends.slurm.script import EXIT_FILE
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from tests.services.grid_jobs import pilot_file, record, settle, submit_ok, wait_for
from tests.services.slurm import SlurmCluster, start_slurm

pytestmark = [pytest.mark.service, pytest.mark.slow]

SACCT = ("sacct", "--noheader", "--parsable2", "--allocations", "--format=JobID,State,ExitCode")


@pytest.fixture(scope="module")
def forgetful() -> Iterator[SlurmCluster]:
    """A Slurm with accounting that forgets finished jobs quickly (``MinJobAge=2``)."""
    cluster = start_slurm(cpus=8, min_job_age=2, accounting=True)
    yield cluster
    cluster.stop()


def backend(
    cluster: SlurmCluster, jobs_dir: Path, images: Path, accounting: Literal["auto", "yes", "no"] = "auto"
) -> SlurmBackend:
    context = BackendContext(home=jobs_dir, jobs_dir=jobs_dir, image_root=images, pilot=pilot_file())
    settings = SlurmSettings(slurm_conf=str(cluster.conf), accounting=accounting)
    return SlurmBackend(settings, context)


def sacct(cluster: SlurmCluster, jobs: list[JobRecord]) -> dict[str, str]:
    """``sacct`` run directly: native id -> ``STATE|ExitCode``."""
    proc = cluster.run(*SACCT, "--jobs", ",".join(j.native_id or "" for j in jobs))
    assert proc.returncode == 0, proc.stderr
    rows = (line.split("|") for line in proc.stdout.splitlines())
    return {row[0]: f"{row[1].split()[0]}|{row[2]}" for row in rows if len(row) == 3}


def forgotten(cluster: SlurmCluster, jobs: list[JobRecord]) -> bool:
    proc = cluster.run("squeue", "--noheader", "--array", "--states=all", "--format=%i")
    assert proc.returncode == 0, proc.stderr
    return not {j.native_id for j in jobs} & set(proc.stdout.split())


def test_status_of_forgotten_jobs_comes_from_sacct(
    forgetful: SlurmCluster, jobs_dir: Path, images: Path
) -> None:
    slurm = backend(forgetful, jobs_dir, images)
    bulk = uuid.uuid4().hex[:12]
    ok, bad, cancelled = record("true"), record("exit 42"), record("sleep 300")
    elements = [record(f"exit {code}", bulk_id=bulk, index=i) for i, code in enumerate((0, 3))]
    jobs = [ok, bad, cancelled, *elements]
    submit_ok(slurm, jobs)
    wait_for(lambda: slurm.status([cancelled])[cancelled.id].state is JobState.RUNNING)
    slurm.cancel([cancelled])
    assert set(settle(slurm, jobs).values()) <= {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}

    wait_for(lambda: forgotten(forgetful, jobs), timeout=60)
    for job in jobs:  # only accounting can answer now
        workdir = job_workdir(job, jobs_dir)
        (workdir / EXIT_FILE).unlink(missing_ok=True)
        (workdir / REPORT_NAME).unlink(missing_ok=True)
        assert st.exit_code_from_files(workdir) is None

    accounted = sacct(forgetful, jobs)
    assert accounted.pop(cancelled.native_id or "", "").startswith("CANCELLED|"), accounted  # 0:0 with -X
    assert accounted == {
        ok.native_id: "COMPLETED|0:0",
        bad.native_id: "FAILED|42:0",
        elements[0].native_id: "COMPLETED|0:0",
        elements[1].native_id: "FAILED|3:0",
    }, accounted

    got = backend(forgetful, jobs_dir, images).status(jobs)  # a fresh backend: "auto" finds sacct
    assert (got[ok.id].state, got[ok.id].exit_code) == (JobState.COMPLETED, 0)
    assert (got[bad.id].state, got[bad.id].exit_code) == (JobState.FAILED, 42)
    assert "exit code 42" in got[bad.id].message
    assert got[cancelled.id].state is JobState.CANCELLED
    assert got[cancelled.id].native_state == "CANCELLED"
    assert (got[elements[0].id].state, got[elements[0].id].exit_code) == (JobState.COMPLETED, 0)
    assert (got[elements[1].id].state, got[elements[1].id].exit_code) == (JobState.FAILED, 3)

    # the same question without accounting has no answer but "Slurm forgot it"
    blind = backend(forgetful, jobs_dir, images, accounting="no").status(jobs)
    assert {info.native_state for info in blind.values()} == {"UNKNOWN"}


def test_session_slurm_keeps_accounting(slurm: SlurmBackend, slurm_cluster: SlurmCluster) -> None:
    """Every Slurm test runs against slurmdbd: ``sacct`` answers on the session's cluster."""
    assert slurm_cluster.accounting
    job = record("exit 5")
    submit_ok(slurm, [job])
    assert settle(slurm, [job]) == {job.id: JobState.FAILED}
    wait_for(lambda: sacct(slurm_cluster, [job]).get(job.native_id or "") == "FAILED|5:0", timeout=30)
    clusters = slurm_cluster.run("sacctmgr", "--noheader", "--parsable2", "list", "cluster", "format=Cluster")
    assert clusters.stdout.split() == ["copstest"]  # slurmctld registered itself
