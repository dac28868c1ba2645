"""Sweeps on the test Slurm: a 10,000-job parametric file split into arrays within MaxArraySize."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.slurm import arrays
from computeops_grid.backends.slurm.backend import SlurmBackend, SlurmSettings
from computeops_grid.errors import JobFileError
from computeops_grid.logic.session import Session
from computeops_grid.logic.submit import records_from_files, submit_records
from tests.conftest import configure_backend
from tests.services.grid_jobs import record
from tests.services.slurm import SlurmCluster, world_dir

SWEEP = """name: sweep-${i}
image: docker://busybox:latest
command: sh
arguments: [-c, 'echo ${i}']
parameters:
  i: {start: 1, stop: 10000}
resources: {cores: 1, memory: 64MiB, walltime: 600}
"""


@pytest.mark.service
def test_10000_job_sweep_is_split_into_arrays_within_max_array_size(
    cops_home: Path, slurm_settings: dict[str, Any], slurm_cluster: SlurmCluster
) -> None:
    """Held (nothing runs), checked with squeue and scontrol, then cancelled."""
    jobs_dir = world_dir("cops-sweep-")
    settings = {
        **slurm_settings,
        "sbatch_options": ["--hold"],
        "jobs_dir": str(jobs_dir),
        "array_throttle": 50,
    }
    configure_backend(cops_home, "slurm", settings)
    (cops_home / "sweep.yaml").write_text(SWEEP)
    array_ids: set[str] = set()
    try:
        with Session.open() as session:
            records = records_from_files([cops_home / "sweep.yaml"], session, "slurm")
            report = submit_records(session, records)
            stored = {r.id: r.native_id or "" for r in session.store.records(backend="slurm")}
            natives = list(stored.values())
            array_ids = {n.split("_")[0] for n in natives if n}
            backend = session.backend("slurm")
            assert isinstance(backend, SlurmBackend)
            size = backend.max_array_size()
            # a lost reply: a fresh client finds tasks of the first, a middle and the last array
            probe = [r for r in records if r.index in (0, 1000, 1001, 5005, 9999)]
            found = SlurmBackend(backend.settings, backend.context).lookup(probe)
        assert report.ok and len(report.submitted) == 10_000
        config = slurm_cluster.run("scontrol", "show", "config").stdout
        assert size == arrays.parse_max_array_size(config) == 1001  # the fixture's default
        assert len(set(natives)) == 10_000, "every task id present once in the store"
        tasks = Counter(n.split("_")[0] for n in natives)
        assert len(tasks) == -(-10_000 // size) == 10
        assert max(tasks.values()) <= size
        assert max(int(n.split("_")[1]) for n in natives) < size, "task ids below MaxArraySize"
        queued = slurm_cluster.run("squeue", "-h", "-r", "-o", "%i", "-j", ",".join(sorted(array_ids))).stdout
        assert sorted(queued.split()) == sorted(natives), "Slurm holds exactly the stored tasks"
        assert {j: f.native_id if f else None for j, f in found.items()} == {
            r.id: stored[r.id] for r in probe
        }
        shown = slurm_cluster.run("scontrol", "show", "job", sorted(array_ids)[0]).stdout
        assert "ArrayTaskThrottle=50" in shown
        assert sorted(p.name for p in jobs_dir.iterdir()) == [arrays.ARRAYS_DIR], "no job directory yet"
        assert len(list((jobs_dir / arrays.ARRAYS_DIR).iterdir())) == 10
    finally:
        if array_ids:
            slurm_cluster.run("scancel", *sorted(array_ids))
        shutil.rmtree(jobs_dir, ignore_errors=True)


def test_split_keeps_task_ids_below_max_array_size() -> None:
    jobs = [record("true", bulk_id="b", index=i) for i in (*range(7), 9, 12)]
    split = arrays.split(jobs, 5)
    assert [(a.base, [a.task_id(j) for j in a.jobs]) for a in split] == [
        (0, [0, 1, 2, 3, 4]),
        (5, [0, 1, 4]),
        (12, [0]),
    ]
    assert [a.name for a in split] == ["cops-b", "cops-b+5", "cops-b+12"]
    assert [arrays.parse_name(a.name) for a in split] == [("b", 0), ("b", 5), ("b", 12)]
    assert [a.base for a in arrays.split(jobs, 13)] == [0], "a bulk that fits keeps task id = index"
    assert arrays.parse_max_array_size("MaxArraySize            = 1001\nMaxJobCount = 10000\n") == 1001


def test_bad_array_throttle_is_refused_naming_the_field(tmp_path: Path) -> None:
    ctx = BackendContext(home=tmp_path, jobs_dir=tmp_path, image_root=tmp_path, pilot=tmp_path / "p")
    backend = SlurmBackend(SlurmSettings(), ctx)
    job = record("true", bulk_id="b", backend_options={"array_throttle": 0})
    with pytest.raises(JobFileError, match=r"backend_options\.array_throttle: expected a whole number"):
        backend.preflight([job])
    with pytest.raises(ValueError, match="array_throttle"):
        SlurmSettings.model_validate({"array_throttle": -1})
