"""One state enum and one transition table, enforced by the job store.

Modelled on PSI/J ``job_state.py``. ``SUBMITTING`` is the crash-safety state: the job
was claimed by a client for submission, but the store has not yet recorded that the
backend accepted it. ``cops-grid sync`` resolves such jobs by asking the backend.
"""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    NEW = "new"
    SUBMITTING = "submitting"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL

    def __str__(self) -> str:
        return self.value


FINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})

_ACTIVE_AFTER_SUBMIT = {
    JobState.QUEUED,
    JobState.RUNNING,
    JobState.COMPLETED,
    JobState.FAILED,
    JobState.CANCELLED,
}

ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.NEW: frozenset({JobState.SUBMITTING, JobState.CANCELLED, JobState.FAILED}),
    # back to NEW: the backend certainly did not take the job (transient error or
    # ``sync`` found nothing); forward: the backend accepted it.
    JobState.SUBMITTING: frozenset({JobState.NEW, *_ACTIVE_AFTER_SUBMIT}),
    JobState.QUEUED: frozenset(_ACTIVE_AFTER_SUBMIT - {JobState.QUEUED}),
    JobState.RUNNING: frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}),
    JobState.COMPLETED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


def is_allowed(old: JobState, new: JobState) -> bool:
    """True when ``old -> new`` is a legal transition (staying put is always legal)."""
    return old == new or new in ALLOWED[old]
