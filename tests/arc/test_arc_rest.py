"""The ARC backend over REST against a real A-REX 6 (Slurm LRMS), with a real VOMS proxy."""

from __future__ import annotations

from pathlib import Path

import pytest

from computeops_grid.backends.arc.backend import ArcBackend
from computeops_grid.errors import BackendUnavailable, CredentialError
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from tests.arc.conftest import make_arc
from tests.services import grid_jobs
from tests.services.arc import ArcCE
from tests.services.grid_jobs import record, submit_ok, wait_for
from tests.services.slurm import free_port

pytestmark = [pytest.mark.service, pytest.mark.slow]


def settle(backend: ArcBackend, jobs: list[JobRecord]) -> None:
    grid_jobs.settle(backend, jobs, timeout=120, step=1.0)


def test_bulk_submit_outputs_and_exit_code_42(arc: ArcBackend, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("input data\n")
    ok = record("cat in.txt; echo result > out.txt", outputs=["out.txt"], inputs=["in.txt"])
    ok.source = str(tmp_path / "job.yaml")
    bad = record("echo about to fail >&2; exit 42")
    submit_ok(arc, [ok, bad])  # one POST with both descriptions
    assert ok.native_id is not None
    assert ok.native_id.startswith(arc.rest.api + "/jobs/")
    settle(arc, [ok, bad])
    got = arc.status([ok, bad])
    assert (got[ok.id].state, got[ok.id].exit_code) == (JobState.COMPLETED, 0)
    assert (got[bad.id].state, got[bad.id].exit_code) == (JobState.FAILED, 42)
    assert "42" in got[bad.id].message
    assert "input data" in arc.logs(ok)
    assert "about to fail" in arc.logs(bad)
    fetched = arc.fetch_outputs(ok, tmp_path / "out")
    assert [p.name for p in fetched] == ["out.txt"]
    assert fetched[0].read_text() == "result\n"


def test_cancel_kills_the_job(arc: ArcBackend) -> None:
    job = record("sleep 300")
    submit_ok(arc, [job])
    wait_for(lambda: arc.status([job])[job.id].state is JobState.RUNNING, timeout=90, step=1.0)
    arc.cancel([job])
    wait_for(lambda: arc.status([job])[job.id].state is JobState.CANCELLED, timeout=90, step=1.0)


def test_ce_down_is_a_clear_transient_error(good_proxy: Path, tmp_path: Path) -> None:
    down = make_arc(f"https://vm:{free_port()}/arex", good_proxy, tmp_path)
    with pytest.raises(BackendUnavailable, match=r"cannot reach the CE https://vm:\d+/arex") as info:
        down.submit([record("true")])
    assert "CE is down" in (info.value.hint or "")
    health = down.check()
    assert not health.reachable
    assert "cannot reach the CE" in health.detail


def test_wrong_vo_is_refused_by_the_ce(arc_ce: ArcCE, tmp_path: Path) -> None:
    other = make_arc(arc_ce.url, arc_ce.proxy("othervo", vo="other.vo"), tmp_path)
    with pytest.raises(CredentialError, match="403"):
        other.submit([record("true")])


def test_describe_adl_and_xrsl(arc_ce: ArcCE, good_proxy: Path, tmp_path: Path) -> None:
    job = record("echo hi", outputs=["res/*.root"], resources={"cores": 2, "walltime": "00:30", "gpus": 1})
    adl = make_arc(arc_ce.url, good_proxy, tmp_path, gpu_runtime_environment="ENV/GPU").describe([job])
    assert f"<Name>cops-{job.id}</Name>" in adl
    assert "<NumberOfSlots>2</NumberOfSlots>" in adl
    assert "<WallTime>1800</WallTime>" in adl
    assert "<RuntimeEnvironment><Name>ENV/GPU</Name></RuntimeEnvironment>" in adl
    assert "<OutputFile><Name>/</Name></OutputFile>" in adl  # a glob keeps the session dir
    xrsl = make_arc(arc_ce.url, good_proxy, tmp_path, description_format="xrsl").describe([job])
    assert xrsl.startswith(f'&(jobname="cops-{job.id}")(executable="cops_pilot.py")')
    assert "(count=2)" in xrsl
    assert "(walltime=30)" in xrsl
    assert '(queue="debug")' in xrsl
