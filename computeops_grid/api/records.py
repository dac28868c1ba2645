"""What the API returns and the CLI prints as JSON: one serialisation for both faces.

A job is a :class:`JobInfo` (a plain, JSON-ready mapping); ``cops-grid list --json`` prints a
list of exactly these, and :class:`~computeops_grid.api.client.Client` returns them.
"""

from __future__ import annotations

import functools
import time
from typing import TypedDict

from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from computeops_grid.jobs.store import JobSummary

FAILED = (JobState.FAILED, JobState.CANCELLED)


class JobInfo(TypedDict):
    """One job as the store knows it; ``state`` is a :class:`~computeops_grid.jobs.state.JobState`
    value (``new``, ``submitting``, ``queued``, ``running``, ``completed``, ``failed``, ``cancelled``)."""

    id: str
    name: str
    backend: str
    state: str
    native_id: str | None
    bulk_id: str | None
    index: int
    exit_code: int | None
    message: str
    created: str
    updated: str
    image_digest: str | None  # provenance: the image that ran (sha256:...), once its report is back
    runtime: str | None  # the container runtime that ran it
    node: str | None  # the host name of the node it ran on


class CancelInfo(JobInfo):
    """A job after ``cancel``: ``outcome`` is ``cancelled``, ``ended``, ``unconfirmed``,
    ``refused`` or ``error`` (see :class:`~computeops_grid.logic.follow.CancelReport`)."""

    outcome: str


@functools.lru_cache(maxsize=4096)  # the jobs of a sweep share their timestamps: 100,000 rows, few values
def when(ts: float) -> str:
    """A store timestamp as local time (``YYYY-MM-DD HH:MM:SS``), empty when unset."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


def job_info(job: JobRecord | JobSummary) -> JobInfo:
    return {
        "id": job.id, "name": job.name, "backend": job.backend, "state": job.state.value,
        "native_id": job.native_id, "bulk_id": job.bulk_id, "index": job.index,
        "exit_code": job.exit_code, "message": job.message,
        "created": when(job.created), "updated": when(job.updated),
        "image_digest": job.image_digest, "runtime": job.runtime, "node": job.node,
    }  # fmt: skip


def final(info: JobInfo) -> bool:
    """The job has ended (completed, failed or cancelled): nothing will change it any more."""
    return JobState(info["state"]).final


def failed(info: JobInfo) -> bool:
    """The job ended without completing (failed or cancelled)."""
    return JobState(info["state"]) in FAILED
