"""Following jobs: refresh states from backends, wait, cancel, outputs, logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from computeops_grid.backends.base import SupportsCancel, SupportsLogs, SupportsOutputs
from computeops_grid.errors import BackendError, UsageError
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from computeops_grid.logic.session import Session, by_backend

log = logging.getLogger(__name__)
ACTIVE = (JobState.QUEUED, JobState.RUNNING)


def refresh(session: Session, ids: Sequence[str] | None = None) -> list[JobRecord]:
    """Ask the backends about active jobs (all, or ``ids``) and record what changed.

    A backend that cannot be reached is logged and skipped: its jobs keep their state.
    Returns the records of ``ids`` (or of all jobs) after the update.
    """
    records = session.store.get_many(ids) if ids is not None else session.store.records(states=ACTIVE)
    active = [r for r in records if r.state in ACTIVE]
    for name, jobs in by_backend(active).items():
        try:
            answers = session.backend(name).status(jobs)
        except BackendError as exc:
            log.warning("cannot refresh %d job(s) on %s: %s", len(jobs), name, exc.message)
            continue
        session.store.transitions(
            (job_id, info.state, info.message, info.exit_code, None, None) for job_id, info in answers.items()
        )
    return session.store.get_many(ids) if ids is not None else session.store.records(states=ACTIVE)


def wait(
    session: Session,
    ids: Sequence[str],
    *,
    poll: float = 0.5,
    timeout: float | None = None,
    progress: Callable[[list[JobRecord]], None] | None = None,
) -> list[JobRecord]:
    """Poll until every job in ``ids`` is final (or has not left ``new``/``submitting``)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = min(0.1, poll)
    while True:
        records = refresh(session, ids)
        if progress:
            progress(records)
        if all(r.state not in ACTIVE for r in records):
            return records
        if deadline is not None and time.monotonic() > deadline:
            return records
        time.sleep(delay)
        delay = min(poll, delay * 1.5)


def cancel(session: Session, ids: Sequence[str]) -> list[JobRecord]:
    records = session.store.get_many(ids)
    for rec in records:
        if rec.state == JobState.SUBMITTING:
            raise UsageError(
                f"job {rec.id} is being submitted; its outcome is not known yet",
                hint="run `cops-grid sync` first, then cancel it",
            )
    unsent = [r.id for r in records if r.state == JobState.NEW]
    session.store.transitions(
        (i, JobState.CANCELLED, "cancelled before submission", None, None, None) for i in unsent
    )
    live = [r for r in records if r.state in ACTIVE]
    for name, jobs in by_backend(live).items():
        backend = session.backend(name)
        if not isinstance(backend, SupportsCancel):
            raise UsageError(f"backend {name} cannot cancel jobs")
        backend.cancel(jobs)
        session.store.transitions(
            (j.id, JobState.CANCELLED, "cancelled by the user", None, None, None) for j in jobs
        )
    return session.store.get_many(ids)


def outputs(session: Session, job_id: str, dest: Path) -> list[Path]:
    rec = refresh(session, [job_id])[0]
    if rec.state in (JobState.NEW, JobState.SUBMITTING):
        raise UsageError(f"job {rec.id} has not been submitted yet ({rec.state})")
    backend = session.backend(rec.backend)
    if not isinstance(backend, SupportsOutputs):
        raise UsageError(
            f"backend {rec.backend} cannot return output files",
            hint=f"`cops-grid logs {rec.id}` shows what the job printed; write outputs to storage",
        )
    return backend.fetch_outputs(rec, dest)


def logs(session: Session, job_id: str) -> str:
    rec = session.store.get(job_id)
    if rec.state in (JobState.NEW, JobState.SUBMITTING):
        raise UsageError(f"job {rec.id} has not been submitted yet ({rec.state})")
    backend = session.backend(rec.backend)
    if not isinstance(backend, SupportsLogs):
        raise UsageError(f"backend {rec.backend} cannot show a job's output")
    return backend.logs(rec)
