"""What every ``cancel`` answers (see :class:`~computeops_grid.backends.base.SupportsCancel`).

Backends that delete a job when they cancel it (Swarm removes the service, Kubernetes the
Job, DiracX marks it ``Killed``) look first: a job that already ended keeps its real end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from computeops_grid.backends.base import StatusInfo
from computeops_grid.jobs.state import JobState

if TYPE_CHECKING:
    from computeops_grid.jobs.record import JobRecord

CANCELLED_BY_USER = "cancelled by the user"


def split_ended(
    jobs: Sequence[JobRecord], infos: Mapping[str, StatusInfo]
) -> tuple[dict[str, StatusInfo], list[JobRecord]]:
    """The jobs that already ended (their final status) and the jobs still to stop."""
    ended = {j.id: infos[j.id] for j in jobs if j.id in infos and infos[j.id].state.final}
    return ended, [j for j in jobs if j.id not in ended]


def stopped(native_state: str = "") -> StatusInfo:
    """The answer for a job this cancel stopped."""
    return StatusInfo(JobState.CANCELLED, message=CANCELLED_BY_USER, native_state=native_state)


def not_found(job: JobRecord, backend: str) -> StatusInfo:
    """The answer for a job the backend does not know: nothing to stop, state unchanged."""
    return StatusInfo(
        job.state,
        message=f"{backend} does not know this job (never accepted here, or already removed)",
        native_state="unknown",
    )
