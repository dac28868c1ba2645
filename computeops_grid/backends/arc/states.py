"""ARC job states (REST ``state`` / arcstat "Specific state") mapped onto cops-grid states."""

from __future__ import annotations

import logging

from computeops_grid.backends.base import StatusInfo
from computeops_grid.jobs.state import JobState

log = logging.getLogger(__name__)

STATE_MAP: dict[str, JobState] = {
    "ACCEPTING": JobState.QUEUED,
    "ACCEPTED": JobState.QUEUED,
    "PREPARING": JobState.QUEUED,
    "PREPARED": JobState.QUEUED,
    "SUBMITTING": JobState.QUEUED,
    "QUEUING": JobState.QUEUED,
    "HELD": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "OTHER": JobState.RUNNING,  # A-REX 6 + Slurm: in the LRMS, LRMS state not mapped
    "EXITINGLRMS": JobState.RUNNING,
    "EXECUTED": JobState.RUNNING,
    "FINISHING": JobState.RUNNING,
    "KILLING": JobState.RUNNING,  # cancel requested, not done yet
    "FINISHED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "KILLED": JobState.CANCELLED,
    "WIPED": JobState.FAILED,
    "DELETED": JobState.FAILED,
}
FINAL_NATIVE = frozenset({"FINISHED", "FAILED", "KILLED", "WIPED", "DELETED"})


def to_status(native: str, exit_code: int | None = None, error: str = "") -> StatusInfo | None:
    """Map an ARC state; ``None`` (no change, logged) for a state this client does not know."""
    state = STATE_MAP.get(native.upper())
    if state is None:
        log.warning("unknown ARC state %r: leaving the job's state unchanged", native)
        return None
    if state is JobState.COMPLETED and exit_code not in (None, 0):
        state = JobState.FAILED
    message = error
    if native.upper() in ("WIPED", "DELETED"):
        message = message or "the CE removed the job (its session directory is gone)"
    if state is JobState.FAILED and exit_code is not None and f"({exit_code})" not in message:
        message = f"exit code {exit_code}" + (f": {message}" if message else "")
    return StatusInfo(state=state, exit_code=exit_code, message=message, native_state=native)
