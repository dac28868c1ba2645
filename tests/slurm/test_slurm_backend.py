"""The Slurm backend against a real single-node Slurm (munged + slurmctld + slurmd)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from computeops_grid.backends.slurm.backend import SlurmBackend, SlurmSettings
from computeops_grid.errors import BackendUnavailable
from computeops_grid.jobs.state import JobState
from tests.services.grid_jobs import record, settle, submit_ok, wait_for
from tests.services.slurm import SlurmCluster

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_hello_output_and_declared_file(slurm: SlurmBackend, tmp_path: Path) -> None:
    job = record("echo hello from $GREETING; echo data > result.txt", outputs=["*.txt"])
    job.spec = job.spec.model_copy(update={"environment": {"GREETING": "slurm"}})
    submit_ok(slurm, [job])
    assert job.native_id is not None
    assert job.native_id.isdigit()
    assert settle(slurm, [job]) == {job.id: JobState.COMPLETED}, slurm.logs(job)
    assert "hello from slurm" in slurm.logs(job)
    fetched = slurm.fetch_outputs(job, tmp_path / "out")
    assert [p.name for p in fetched] == ["result.txt"]
    assert (tmp_path / "out" / "result.txt").read_text() == "data\n"


def test_payload_exit_code_42(slurm: SlurmBackend) -> None:
    job = record("echo failing >&2; exit 42")
    submit_ok(slurm, [job])
    settle(slurm, [job])
    info = slurm.status([job])[job.id]
    assert info.state is JobState.FAILED
    assert info.exit_code == 42
    assert "exit code 42" in info.message
    assert "failing" in slurm.logs(job)


def test_parametric_100_is_one_array(slurm: SlurmBackend, slurm_cluster: SlurmCluster) -> None:
    bulk = uuid.uuid4().hex[:12]
    jobs = [
        record(f"echo element {i} > out.txt", bulk_id=bulk, index=i, outputs=["out.txt"]) for i in range(100)
    ]
    submit_ok(slurm, jobs)
    bases = {j.native_id.split("_")[0] for j in jobs if j.native_id}
    assert len(bases) == 1, "all 100 elements must be one sbatch --array"
    base = bases.pop()
    assert [j.native_id for j in jobs] == [f"{base}_{i}" for i in range(100)]
    states = settle(slurm, jobs, timeout=150)
    assert set(states.values()) == {JobState.COMPLETED}
    assert all((j.workdir / "out.txt").read_text() == f"element {j.index}\n" for j in jobs if j.workdir)


def test_bulk_status_of_a_mix(slurm: SlurmBackend) -> None:
    ok, bad, running, cancelled = (
        record("true"),
        record("exit 3"),
        record("sleep 120"),
        record("sleep 120"),
    )
    jobs = [ok, bad, running, cancelled]
    submit_ok(slurm, jobs)
    wait_for(lambda: all(s.state is not JobState.QUEUED for s in slurm.status(jobs).values()))
    slurm.cancel([cancelled])
    ghost = record("true")  # finished long ago: Slurm forgot it, its files remain
    ghost.native_id, ghost.workdir = (
        "987654321",
        running.workdir.parent / "ghost" if running.workdir else None,
    )
    assert ghost.workdir is not None
    ghost.workdir.mkdir()
    (ghost.workdir / "cops-exitcode").write_text("7\n")

    def mixed() -> bool:  # every job has reached the state it is meant to be seen in
        got = slurm.status([*jobs, ghost])
        return (
            got[ok.id].state is JobState.COMPLETED
            and got[bad.id].state is JobState.FAILED
            and got[cancelled.id].state is JobState.CANCELLED
        )

    wait_for(mixed)
    got = slurm.status([*jobs, ghost])
    assert got[ok.id].exit_code == 0
    assert (got[bad.id].state, got[bad.id].exit_code) == (JobState.FAILED, 3)
    assert got[running.id].state is JobState.RUNNING
    assert (got[ghost.id].state, got[ghost.id].exit_code) == (JobState.FAILED, 7)
    slurm.cancel([running])


def test_cancel_leaves_no_process(slurm: SlurmBackend) -> None:
    marker = f"{uuid.uuid4().int % 10**6 + 7000000}"
    job = record(f"sleep {marker}")
    submit_ok(slurm, [job])

    def sleeping() -> bool:
        return any(marker in cmdline(p) for p in procs())

    wait_for(sleeping)
    slurm.cancel([job])
    assert settle(slurm, [job]) == {job.id: JobState.CANCELLED}
    wait_for(lambda: not sleeping(), timeout=10)


def cmdline(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:  # the process ended meanwhile
        return ""


def procs() -> list[Path]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (entry / "cmdline").exists():
            found.append(entry / "cmdline")
    return [p for p in found if os.access(p, os.R_OK)]


def test_lookup_finds_jobs_after_a_crash(slurm: SlurmBackend, slurm_cluster: SlurmCluster) -> None:
    single = record("sleep 5")
    bulk = uuid.uuid4().hex[:12]
    elements = [record("sleep 5", bulk_id=bulk, index=i) for i in (3, 4)]
    results = slurm.submit([single, *elements])  # the client "crashes": nothing recorded
    before = set(slurm_cluster.run("squeue", "-h", "-r", "-o", "%i").stdout.split())
    fresh = SlurmBackend(slurm.settings, slurm.context)
    found = fresh.lookup([single, *elements, record("true")])
    assert [found[j.id].native_id for j in (single, *elements)] == [r.native_id for r in results]  # type: ignore[union-attr]
    assert list(found.values())[-1] is None
    # nothing resubmitted: no job appeared (other tests' jobs may have ended meanwhile)
    assert set(slurm_cluster.run("squeue", "-h", "-r", "-o", "%i").stdout.split()) <= before
    for job, result in zip([single, *elements], results):
        job.native_id = result.native_id
    slurm.cancel([single, *elements])


def test_refused_job_is_a_clear_permanent_error(slurm: SlurmBackend) -> None:
    job = record("true", backend_options={"partition": "nosuchpart"})
    (result,) = slurm.submit([job])
    assert result.native_id is None
    assert result.error is not None
    assert not result.error.transient
    assert "sbatch refused" in result.error.message
    assert "invalid partition" in result.error.message.lower()


def test_controller_down_is_transient(
    slurm: SlurmBackend, tmp_path: Path, slurm_cluster: SlurmCluster
) -> None:
    conf = tmp_path / "slurm.conf"
    from tests.services.slurm import free_port

    text = slurm_cluster.conf.read_text()
    old_port = next(line for line in text.splitlines() if line.startswith("SlurmctldPort="))
    # nothing listens on the new port; short timeouts so the client gives up in milliseconds
    conf.write_text(
        text.replace(old_port, f"SlurmctldPort={free_port()}") + "MessageTimeout=1\nTCPTimeout=1\n"
    )
    dead = SlurmBackend(SlurmSettings(slurm_conf=str(conf), command_timeout=60), slurm.context)
    with pytest.raises(BackendUnavailable, match="Unable to contact slurm controller") as info:
        dead.status([record("true")])
    assert "scontrol ping" in (info.value.hint or "")
    (result,) = dead.submit([record("true")])
    assert result.native_id is None
    assert result.error is not None
    assert result.error.transient
    assert "Unable to contact slurm controller" in result.error.message
    health = dead.check()
    assert not health.reachable
    assert "Unable to contact" in health.detail
