"""The same job file through both ARC transports, REST and the arc* tools, on a real A-REX 6.

The CE runs jobs in the real Slurm (``arc_ce``); ``test_arc_fork.py`` does the same on the
fork LRMS. Every job runs ``etc/examples/hello.yaml``-style payloads through the pilot wrapper.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from computeops_grid.backends.arc.backend import ArcBackend
from computeops_grid.errors import BackendUnavailable
from computeops_grid.jobs.loader import load_jobs
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from tests.arc.conftest import make_arc
from tests.services import grid_jobs
from tests.services.arc import ArcCE
from tests.services.grid_jobs import record, submit_ok, wait_for
from tests.services.slurm import SlurmCluster, free_port

pytestmark = [
    pytest.mark.service,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("arcsub") is None, reason="ARC client tools not installed"),
]
HELLO = Path(__file__).resolve().parents[2] / "etc" / "examples" / "hello.yaml"
TRANSPORTS = ["rest", "cli"]


def from_file(path: Path) -> JobRecord:
    job = load_jobs([path])[0]
    return JobRecord(id=uuid.uuid4().hex[:12], spec=job.spec, backend="arc", source=str(path))


def settle(backend: ArcBackend, jobs: list[JobRecord]) -> None:
    grid_jobs.settle(backend, jobs, timeout=150, step=2.0)


def hello_and_42(backend: ArcBackend, tmp_path: Path) -> None:
    """Shared by the Slurm and fork CEs: hello output, declared output file, exit code 42."""
    hello, bad = from_file(HELLO), record("echo about to fail >&2; exit 42")
    submit_ok(backend, [hello, bad])  # one arcsub / one POST for both
    assert hello.native_id is not None
    assert "/rest/1.0/jobs/" in hello.native_id  # the same job URL on both transports
    settle(backend, [hello, bad])
    got = backend.status([hello, bad])
    assert (got[hello.id].state, got[hello.id].exit_code) == (JobState.COMPLETED, 0)
    assert (got[bad.id].state, got[bad.id].exit_code) == (JobState.FAILED, 42)
    assert "42" in got[bad.id].message
    assert "Hello from Linux in a container, job hello" in backend.logs(hello)
    assert "about to fail" in backend.logs(bad)
    fetched = backend.fetch_outputs(hello, tmp_path / "out")
    assert [p.name for p in fetched] == ["result.txt"]
    assert fetched[0].read_text() == "done\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["result.txt"]  # no temp dirs left


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hello_outputs_and_exit_code_42(
    arc_ce: ArcCE, good_proxy: Path, tmp_path: Path, transport: str
) -> None:
    backend = make_arc(arc_ce.url, good_proxy, tmp_path, transport=transport)
    assert (backend.tools() is not None) == (transport == "cli")
    hello_and_42(backend, tmp_path)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cancel_stops_a_running_job(
    arc_ce: ArcCE, slurm_cluster: SlurmCluster, good_proxy: Path, tmp_path: Path, transport: str
) -> None:
    backend = make_arc(arc_ce.url, good_proxy, tmp_path, transport=transport)
    job = record("sleep 300")
    submit_ok(backend, [job])
    wait_for(lambda: backend.status([job])[job.id].state is JobState.RUNNING, timeout=120, step=2.0)
    in_slurm = slurm_jobs(slurm_cluster)
    assert in_slurm, "the CE reported RUNNING but Slurm runs nothing"
    backend.cancel([job])
    wait_for(lambda: backend.status([job])[job.id].state is JobState.CANCELLED, timeout=120, step=2.0)
    wait_for(lambda: not (in_slurm & slurm_jobs(slurm_cluster)), timeout=30)


def slurm_jobs(cluster: SlurmCluster) -> set[str]:
    """Ids of the jobs the CE's mapped user (nobody) has running in Slurm."""
    return set(cluster.run("squeue", "-h", "-u", "nobody", "-t", "R", "-o", "%i").stdout.split())


def test_cli_follows_a_job_submitted_over_rest(arc_ce: ArcCE, good_proxy: Path, tmp_path: Path) -> None:
    """Native ids are shared: the tools pick up a REST job after adding it with arcsync."""
    rest = make_arc(arc_ce.url, good_proxy, tmp_path, transport="rest")
    cli = make_arc(arc_ce.url, good_proxy, tmp_path, transport="cli")
    job = record("echo over rest")
    submit_ok(rest, [job])
    settle(cli, [job])
    assert cli.status([job])[job.id].state is JobState.COMPLETED
    assert "over rest" in cli.logs(job)


def test_cli_health_lists_the_queue(arc_ce: ArcCE, good_proxy: Path, tmp_path: Path) -> None:
    health = make_arc(arc_ce.url, good_proxy, tmp_path, transport="cli").check()
    assert health.reachable, health.detail
    assert "via arc* tools" in health.detail
    assert "queues debug" in health.detail


def test_cli_ce_down_is_retryable_and_says_so(good_proxy: Path, tmp_path: Path) -> None:
    down = make_arc(f"https://vm:{free_port()}/arex", good_proxy, tmp_path, transport="cli")
    with pytest.raises(BackendUnavailable) as info:  # the answer for every job of the call
        down.submit([record("true")])
    error = info.value
    assert error.transient  # not sent: the job stays retryable
    assert "arcsub against the CE https://vm:" in error.message
    assert "Failed to connect" in error.message
    assert not down.check().reachable


def test_auto_transport_is_rest_when_the_ce_offers_it(
    arc_ce: ArcCE, good_proxy: Path, tmp_path: Path
) -> None:
    backend = make_arc(arc_ce.url, good_proxy, tmp_path)
    assert backend.settings.transport == "auto"
    assert backend.tools() is None
    assert "REST 1.0" in backend.check().detail
