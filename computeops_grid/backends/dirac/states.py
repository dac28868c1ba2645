"""DIRAC job states (the same in DiracX and legacy DIRAC) mapped to cops-grid's.

Kept apart from both backends so the legacy one never imports DiracX's dependencies.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from computeops_grid.backends.base import StatusInfo
from computeops_grid.jobs.state import JobState

log = logging.getLogger(__name__)

STATE_MAP: dict[str, JobState] = {
    "Submitting": JobState.QUEUED,
    "Received": JobState.QUEUED,
    "Checking": JobState.QUEUED,
    "Staging": JobState.QUEUED,
    "Waiting": JobState.QUEUED,
    "Matched": JobState.QUEUED,
    "Rescheduled": JobState.QUEUED,
    "Running": JobState.RUNNING,
    "Stalled": JobState.RUNNING,
    "Completing": JobState.RUNNING,
    "Completed": JobState.RUNNING,
    "Done": JobState.COMPLETED,
    "Failed": JobState.FAILED,
    "Killed": JobState.CANCELLED,
    "Deleted": JobState.CANCELLED,
}
EXIT_RE = re.compile(r"exit code (-?\d+)", re.IGNORECASE)


def native_state(row: dict[str, Any]) -> StatusInfo:
    status = str(row.get("Status", ""))
    app = str(row.get("ApplicationStatus") or "")
    minor = str(row.get("MinorStatus") or "")
    state = STATE_MAP.get(status)
    if state is None:
        log.warning("unknown DIRAC status %r; keeping the job's state", status)
    match = EXIT_RE.search(app) or EXIT_RE.search(minor)
    return StatusInfo(
        state=state or JobState.QUEUED,
        exit_code=int(match.group(1)) if match else (0 if status == "Done" else None),
        message="; ".join(p for p in (minor, app) if p and p != "Unknown"),
        native_state=status,
    )
