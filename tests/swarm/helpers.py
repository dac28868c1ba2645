"""Build job records the way ``cops-grid submit`` does, and wait for them on a backend."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from computeops_grid.backends.base import Backend, StatusInfo
from computeops_grid.jobs.loader import expand
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord


def records(spec: dict[str, Any], backend: str = "swarm") -> list[JobRecord]:
    bulk = secrets.token_hex(6)
    out = []
    for job in expand(JobSpec.model_validate(spec)):
        out.append(
            JobRecord(
                id=secrets.token_hex(6), spec=job.spec, backend=backend,
                bulk_id=bulk if job.params else None, index=job.index, params=job.params,
            )
        )  # fmt: skip
    return out


def submitted(backend: Backend, jobs: Sequence[JobRecord]) -> list[JobRecord]:
    results = backend.submit(jobs)
    for job, res in zip(jobs, results):
        assert res.error is None, res.error.message
        job.native_id = res.native_id
    return list(jobs)


def wait_final(backend: Backend, jobs: Sequence[JobRecord], timeout: float = 90) -> dict[str, StatusInfo]:
    deadline = time.monotonic() + timeout
    while True:
        infos = backend.status(jobs)
        if len(infos) == len(jobs) and all(i.state.final for i in infos.values()):
            return infos
        assert time.monotonic() < deadline, f"not final after {timeout}s: {infos}"
        time.sleep(0.3)


def wait_state(backend: Backend, job: JobRecord, wanted: str, timeout: float = 60) -> StatusInfo:
    deadline = time.monotonic() + timeout
    while True:
        info = backend.status([job]).get(job.id)
        if info is not None and info.state.value == wanted:
            return info
        assert time.monotonic() < deadline, f"job never reached {wanted}: {info}"
        time.sleep(0.2)


def hello(**extra: Any) -> dict[str, Any]:
    return {"name": "t", "image": "docker://busybox:latest", "command": "sh", **extra}
