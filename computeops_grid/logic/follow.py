"""Following jobs: refresh states from backends, wait, cancel, outputs, logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

from computeops_grid.backends.base import Backend, StatusInfo, SupportsCancel, SupportsLogs, SupportsOutputs
from computeops_grid.backends.common.cancel import split_ended
from computeops_grid.errors import BackendError, CopsError, CredentialError, UsageError
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from computeops_grid.logic import provenance
from computeops_grid.logic.session import Session, by_backend

log = logging.getLogger(__name__)
ACTIVE = (JobState.QUEUED, JobState.RUNNING)
CONFIRM_TIMEOUT = 10.0  # seconds cancel waits for a backend to confirm what it accepted
UNCONFIRMED = "cancel requested; not yet confirmed by the backend"
UNREACHED = (BackendError, CredentialError)  # the request failed: the jobs' states stay as they are


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
        # what ran comes back as soon as a job is seen ended
        provenance.collect_ended(session, [i for i, info in answers.items() if info.state.final])
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


@dataclass
class CancelReport:
    """What :func:`cancel` did; every job asked for is in exactly one group."""

    records: list[JobRecord] = field(default_factory=list)  # after the cancel, in the order asked
    cancelled: list[str] = field(default_factory=list)  # stopped by the backend, or never sent
    ended: list[str] = field(default_factory=list)  # had already ended: real state and exit code kept
    unconfirmed: list[str] = field(default_factory=list)  # accepted, not confirmed within the wait
    refused: dict[str, str] = field(default_factory=dict)  # the backend did not stop them: why
    errors: dict[str, CopsError] = field(default_factory=dict)  # backend not reached: state unchanged

    def outcome(self, job_id: str) -> str:
        """``cancelled``, ``ended``, ``unconfirmed``, ``refused`` or ``error``."""
        groups: dict[str, Container[str]] = {
            "cancelled": self.cancelled, "ended": self.ended, "unconfirmed": self.unconfirmed,
            "refused": self.refused, "error": self.errors,
        }  # fmt: skip
        return next((name for name, group in groups.items() if job_id in group), "unknown")

    def add_final(self, job_id: str, state: JobState) -> None:
        """A final state the backend reported after the cancel request."""
        (self.cancelled if state is JobState.CANCELLED else self.ended).append(job_id)


def cancel(session: Session, ids: Sequence[str], *, confirm_timeout: float = CONFIRM_TIMEOUT) -> CancelReport:
    """Cancel jobs; record ``cancelled`` only for jobs their backend confirms it stopped.

    Active jobs are refreshed first: one that already ended is recorded with its real state
    and exit code and is never sent a cancel. Jobs the backend took the request for without
    confirming it are polled (at most ``confirm_timeout`` seconds, with backoff); those still
    unconfirmed keep their state with the message :data:`UNCONFIRMED`. A backend that cannot
    be reached leaves its jobs' states unchanged (``errors``).
    """
    records = session.store.get_many(ids)
    for rec in records:
        if rec.state == JobState.SUBMITTING:
            raise UsageError(
                f"job {rec.id} is being submitted; its outcome is not known yet",
                hint="run `cops-grid sync` first, then cancel it",
            )
    live = by_backend(r for r in records if r.state in ACTIVE)
    cancellers = {name: _canceller(session, name) for name in live}
    report = CancelReport()
    unsent = [r.id for r in records if r.state == JobState.NEW]
    session.store.transitions(
        (i, JobState.CANCELLED, "cancelled before submission", None, None, None) for i in unsent
    )
    report.cancelled += unsent
    report.ended += [r.id for r in records if r.state.final]
    for name, jobs in live.items():
        _cancel_on(session, cancellers[name], jobs, report, confirm_timeout)
    report.records = session.store.get_many(ids)
    return report


class _Cancellable(Backend, SupportsCancel, Protocol):
    """A backend that declared (and implements) the cancel capability."""


def _canceller(session: Session, name: str) -> _Cancellable:
    backend = session.backend(name)
    if not isinstance(backend, SupportsCancel):
        raise UsageError(
            f"backend {name} cannot cancel jobs", hint="`cops-grid backends` lists what each backend can do"
        )
    return cast("_Cancellable", backend)


def _cancel_on(
    session: Session, backend: _Cancellable, jobs: list[JobRecord], report: CancelReport, wait_s: float
) -> None:
    """One backend's jobs: look, cancel those still active, confirm."""
    try:
        before = backend.status(jobs)
    except UNREACHED as exc:
        report.errors.update(dict.fromkeys((j.id for j in jobs), exc))
        return
    _record(session, before.items())
    ended, todo = split_ended(jobs, before)
    report.ended += list(ended)
    if not todo:
        return
    try:
        answers = backend.cancel(todo)
    except UNREACHED as exc:
        report.errors.update(dict.fromkeys((j.id for j in todo), exc))
        return
    final = {i: s for i, s in answers.items() if s.state.final}
    _record(session, final.items())
    for job_id, info in final.items():
        report.add_final(job_id, info.state)
    refused = {i: s.message or "the backend did not stop it" for i, s in answers.items() if i not in final}
    report.refused.update(refused)
    _note(session, {i: f"not cancelled: {why}" for i, why in refused.items()})
    pending = _confirm(session, backend, [j for j in todo if j.id not in answers], report, wait_s)
    report.unconfirmed += [j.id for j in pending]
    _note(session, dict.fromkeys((j.id for j in pending), UNCONFIRMED))


def _confirm(
    session: Session, backend: Backend, pending: list[JobRecord], report: CancelReport, wait_s: float
) -> list[JobRecord]:
    """Poll ``status`` until the backend reports a final state for each job, or ``wait_s`` passed.

    Only final states are recorded; returns the jobs still unconfirmed."""
    deadline = time.monotonic() + wait_s
    delay = 0.25
    while pending and time.monotonic() < deadline:
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 2.0)
        try:
            infos = backend.status(pending)
        except UNREACHED as exc:
            log.warning("cannot confirm the cancel of %d job(s): %s", len(pending), exc.message)
            break
        final = {i: s for i, s in infos.items() if s.state.final}
        _record(session, final.items())
        for job_id, info in final.items():
            report.add_final(job_id, info.state)
        pending = [j for j in pending if j.id not in final]
    return pending


def _record(session: Session, infos: Iterable[tuple[str, StatusInfo]]) -> None:
    infos = list(infos)
    session.store.transitions((i, s.state, s.message, s.exit_code, None, None) for i, s in infos)
    # what ran, for jobs that had ended by themselves (a cancelled one's report is asked by `show`)
    provenance.collect_ended(
        session, [i for i, s in infos if s.state in (JobState.COMPLETED, JobState.FAILED)]
    )


def _note(session: Session, messages: dict[str, str]) -> None:
    """Set a message on jobs, keeping whatever state the store has for them."""
    records = session.store.get_many(list(messages))
    session.store.transitions((r.id, r.state, messages[r.id], None, None, None) for r in records)


def outputs(session: Session, job_id: str, dest: Path) -> list[Path]:
    rec = session.store.get(job_id)
    backend = session.backend(rec.backend)
    if not isinstance(backend, SupportsOutputs):  # said before asking the backend anything
        raise UsageError(
            f"backend {rec.backend} cannot return output files",
            hint=f"`cops-grid logs {rec.id}` shows what the job printed; write outputs to storage",
        )
    rec = refresh(session, [job_id])[0]
    if rec.state in (JobState.NEW, JobState.SUBMITTING):
        raise UsageError(f"job {rec.id} has not been submitted yet ({rec.state})")
    return backend.fetch_outputs(rec, dest)


def logs(session: Session, job_id: str) -> str:
    rec = session.store.get(job_id)
    if rec.state in (JobState.NEW, JobState.SUBMITTING):
        raise UsageError(f"job {rec.id} has not been submitted yet ({rec.state})")
    backend = session.backend(rec.backend)
    if not isinstance(backend, SupportsLogs):
        raise UsageError(f"backend {rec.backend} cannot show a job's output")
    return backend.logs(rec)
