"""Helpers shared by the Slurm and ARC tests: job records and the pilot wrapper to ship."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from computeops_grid import worker
from computeops_grid.backends.base import Backend
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState

STAND_IN = Path(__file__).with_name("pilot_stand_in.py")
IMAGE_ROOTS: list[Path] = []  # the session's image repository, set by the arc_ce fixture


def pilot_file() -> Path:
    """The real wrapper once it is complete in the tree, else the stand-in (see its docstring)."""
    try:
        path = worker.pilot()
    except FileNotFoundError:
        return STAND_IN
    return path if "__main__" in path.read_text() else STAND_IN


def record(
    script: str,
    *,
    name: str = "t",
    outputs: list[str] | None = None,
    bulk_id: str | None = None,
    index: int = 0,
    **spec: Any,
) -> JobRecord:
    """A job running ``/bin/sh -c script`` in busybox, as the store would hand it to a backend."""
    job_spec = JobSpec(
        name=name,
        image="docker://busybox:latest",
        command="/bin/sh",
        arguments=["-c", script],
        outputs=outputs or [],
        **spec,
    )
    return JobRecord(id=uuid.uuid4().hex[:12], spec=job_spec, backend="test", bulk_id=bulk_id, index=index)


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, step: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise TimeoutError(f"condition not met within {timeout} s")


def submit_ok(backend: Backend, jobs: list[JobRecord]) -> None:
    """Submit and keep each native id on its record, as the logic layer does."""
    for job, result in zip(jobs, backend.submit(jobs)):
        assert result.error is None, result.error
        assert result.native_id is not None
        job.native_id = result.native_id


def settle(
    backend: Backend, jobs: list[JobRecord], timeout: float = 90.0, step: float = 0.3
) -> dict[str, JobState]:
    """Poll ``status`` until every job is final; the last state seen per job."""
    states: dict[str, JobState] = {}

    def done() -> bool:
        states.update({k: v.state for k, v in backend.status(jobs).items()})
        return all(states.get(j.id, JobState.QUEUED).final for j in jobs)

    wait_for(done, timeout=timeout, step=step)
    return states


def image_root() -> Path:
    """A world-readable image repository with ``docker://busybox:latest`` (jobs may run as nobody)."""
    from computeops_grid.images.default import ensure_default_image
    from tests.services.slurm import world_dir

    root = world_dir("cops-grid-images-")
    ensure_default_image(root)
    return root
