"""`cops-grid bench orchestrators` on this machine: the local backend, a private Slurm and
the private swarm run for real; the systems that cannot run here get rows with the reason
found by probing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from computeops_grid import worker
from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.slurm.backend import SlurmBackend
from computeops_grid.bench import daemons
from computeops_grid.bench import orch_systems as osys
from computeops_grid.bench import orchestrators as orch
from computeops_grid.bench.daemons import PrivateDockerd

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture
def slurm_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The study starts its own Slurm only when none answers: no SLURM_CONF from outside."""
    missing = daemons.missing_slurm_daemons()
    if missing or os.geteuid() != 0:
        pytest.skip(
            f"a private Slurm needs root and {', '.join(missing) or 'its daemons'} (slurm-wlm, munge)"
        )
    monkeypatch.delenv("SLURM_CONF", raising=False)


def _cmdlines() -> list[str]:
    out = []
    for pid in Path("/proc").iterdir():
        try:
            out.append((pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return out


@pytest.mark.usefixtures("slurm_installed")
def test_private_slurm_runs_jobs_and_is_gone_after_stop(tmp_path: Path) -> None:
    ctx = BackendContext(
        home=tmp_path, jobs_dir=tmp_path / "jobs", image_root=tmp_path / "img", pilot=worker.pilot()
    )
    system = osys.slurm_system(ctx, None, cpus=8)
    assert system.info.available, system.info.why
    assert isinstance(system.backend, SlurmBackend)
    conf = system.backend.settings.slurm_conf
    assert conf is not None
    assert "private single-node cluster, CPUs=8" in system.info.detail
    assert "started privately" in system.daemons
    assert system.backend.check().reachable
    job = orch._record("bench-kill", "sleep", ["300"])
    assert orch.submit(system.backend, [job]) == [None]
    running = orch._wait(system.backend, job, lambda i: i is not None and i.state.value == "running", 60)
    assert running is not None
    assert running.state.value == "running"  # seen running: the killed-job probe can act on it
    system.stop()  # cancels the sleeping job, stops the daemons
    assert not Path(conf).parent.exists()
    assert not [c for c in _cmdlines() if conf in c]


@pytest.mark.usefixtures("slurm_installed")
def test_small_study_writes_the_report(tmp_path: Path, swarm_daemon: PrivateDockerd) -> None:
    opts = orch.Options(
        out=tmp_path / "r", sizes={1: 2, 4: 1}, docker_host=swarm_daemon.host, timeout=120, gpu_wait=4,
        slurm_cpus=8,
    )  # fmt: skip
    written = orch.run(opts)
    text = written.markdown.read_text()
    assert written.html.is_file()
    assert written.plots
    data = json.loads(written.json.read_text())
    ok = {(m["system"], m["workload"]) for m in data["measurements"] if m["value"] is not None}
    for system in ("local", "slurm", "swarm"):
        for wl in ("first-start-1", "makespan-4", "throughput-4"):
            assert (system, wl) in ok, (system, wl)
    why = {s["name"]: s["why"] for s in data["systems"] if not s["available"]}
    assert "not on PATH" in why["mesos"]
    assert "rkt" in why["rkt"]
    assert "shifter" in why["shifter"]
    assert "kubeconfig" in why["kubernetes"]
    features = {row["system"]: row for row in data["features"]}
    assert features["swarm"]["job over memory limit"].startswith("failed, exit 137: limit enforced")
    assert "insufficient resources" in features["swarm"]["GPU job (no GPU here)"]
    assert "limit NOT enforced (payload survived)" in features["local"]["job over memory limit"]
    for system in ("local", "slurm", "swarm"):
        assert "after cancel" in features[system]["killed running job"], features[system]
    slurm = features["slurm"]
    assert slurm["killed running job"].startswith("cancelled"), slurm
    assert "Invalid generic resource" in slurm["GPU job (no GPU here)"]
    if daemons.memory_cgroup_problem():
        assert "limit NOT enforced" in slurm["job over memory limit"]
    else:
        assert slurm["job over memory limit"].startswith("failed, exit 137: limit enforced"), slurm
    assert "## Feature matrix" in text
    assert "Measured here: local, slurm, swarm" in text
    assert "private single-node cluster, CPUs=8 declared" in text  # how the Slurm row was set up
