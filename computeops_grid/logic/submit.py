"""Submission: job files -> records in the store -> claimed -> handed to backends.

The order is what makes it crash-safe: ids are assigned and recorded (``new``) before
any backend call; jobs are claimed (``submitting``) atomically so only one process
submits each; the backend's answer is recorded right after it returns. A crash in
between leaves ``submitting`` jobs that ``sync`` resolves with ``Backend.lookup``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from computeops_grid.backends.base import Backend, SubmitResult, SupportsPreflight
from computeops_grid.errors import BackendError, CredentialError, Delivery, ToolMissing, UsageError
from computeops_grid.jobs.formats.common import ReadOptions
from computeops_grid.jobs.loader import ExpandedJob, load_jobs
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from computeops_grid.jobs.store import Change
from computeops_grid.logic import storage_plan
from computeops_grid.logic.session import Session, by_backend

log = logging.getLogger(__name__)
Progress = Callable[[int], None]
CHUNK = 100


def new_id() -> str:
    return secrets.token_hex(6)


def _fresh_ids(block: int = 1000) -> Iterator[str]:
    """Ids like :func:`new_id`'s, drawn ``block`` at a time (one call for 1,000 jobs' randomness)."""
    while True:
        data = secrets.token_bytes(6 * block)
        yield from (data[i : i + 6].hex() for i in range(0, len(data), 6))


@dataclass
class SubmitReport:
    submitted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # refused for good
    retryable: dict[str, str] = field(default_factory=dict)  # still new: retry with resubmit
    tool_missing: bool = False  # a retryable job waits for a tool to be installed (exit 69, not 75)
    unknown: list[str] = field(default_factory=list)  # outcome unknown: run sync

    @property
    def ok(self) -> bool:
        return not (self.failed or self.retryable or self.unknown)


def records_from_files(
    paths: Sequence[Path],
    session: Session,
    backend: str | None,
    *,
    image: str | None = None,
    notes: list[str] | None = None,
) -> list[JobRecord]:
    """Load, validate and expand job files into records with fresh ids (not stored yet).

    ``image`` is for native descriptions naming none; ``notes`` (when given) receives what
    native descriptions hold that the jobs do not carry (site options are kept for ``backend``).
    """
    target = session.config.resource(backend or session.config.default_backend).type
    return records_from_jobs(
        session, load_jobs(list(paths), ReadOptions(image=image, target=target), notes), backend
    )


def records_from_jobs(session: Session, jobs: Iterable[ExpandedJob], backend: str | None) -> list[JobRecord]:
    """Records with fresh ids for expanded jobs (a parametric group shares one bulk id); a job
    built in code has no source file: its relative inputs are taken from the working directory."""
    records = []
    groups: dict[tuple[str, str], str] = {}
    sources: dict[str, str] = {}  # a sweep's 10,000 jobs come from one file: resolved once
    ids = _fresh_ids()
    for job in jobs:
        bulk_id = None
        if job.params:
            key = (job.source, job.group)
            bulk_id = groups[key] if key in groups else groups.setdefault(key, next(ids))
        name = backend or job.spec.backend or session.config.default_backend
        records.append(
            JobRecord(
                id=next(ids), spec=job.spec, backend=name, bulk_id=bulk_id, index=job.index,
                source=_resolved(job.source, sources), params=job.params,
            )
        )  # fmt: skip
    return records


def _resolved(source: str, cache: dict[str, str]) -> str:
    if source and source not in cache:
        cache[source] = str(Path(source).resolve())
    return cache.get(source, "")


def preflight(session: Session, records: Sequence[JobRecord]) -> None:
    """Let each backend refuse before anything is stored (credentials, settings)."""
    storage_plan.refuse_unsupported(session, records)  # storage URLs where no mover ships
    for name, jobs in by_backend(records).items():
        backend = session.backend(name)
        if isinstance(backend, SupportsPreflight):
            backend.preflight(jobs)


def describe(session: Session, records: Sequence[JobRecord]) -> str:
    return "".join(session.backend(name).describe(jobs) for name, jobs in by_backend(records).items())


def _chunks(jobs: list[JobRecord]) -> list[list[JobRecord]]:
    """Chunks of about CHUNK jobs that never split a parametric group (arrays)."""
    chunks: list[list[JobRecord]] = [[]]
    for job in jobs:
        same_group = chunks[-1] and job.bulk_id is not None and chunks[-1][-1].bulk_id == job.bulk_id
        if len(chunks[-1]) >= CHUNK and not same_group:
            chunks.append([])
        chunks[-1].append(job)
    return [c for c in chunks if c]


def _record_results(session: Session, results: list[SubmitResult], report: SubmitReport) -> None:
    """Record each answer by its delivery (see :class:`~computeops_grid.errors.Delivery`)."""
    changes: list[Change] = []
    for res in results:
        if res.error is None:
            changes.append((res.job_id, res.state, "", None, res.native_id, None))
            report.submitted.append(res.job_id)
        elif res.error.delivery is Delivery.MAY_HAVE_ARRIVED:  # stays submitting: `sync` looks it up
            report.unknown.append(res.job_id)
        elif res.error.delivery is Delivery.NOT_SENT:
            changes.append((res.job_id, JobState.NEW, res.error.message, None, None, None))
            report.retryable[res.job_id] = res.error.message
            report.tool_missing |= isinstance(res.error, ToolMissing)
        else:
            changes.append((res.job_id, JobState.FAILED, res.error.message, None, None, None))
            report.failed[res.job_id] = res.error.message
    session.store.transitions(changes, strict=True)


def _submit_chunk(session: Session, backend: Backend, chunk: list[JobRecord]) -> list[SubmitResult]:
    """One backend call; an error for the whole call is every job's answer."""
    try:
        return backend.submit(chunk)
    except BackendError as exc:
        if exc.uncertain:
            log.warning("%s; run `cops-grid sync`", exc.message)
        return [SubmitResult(j.id, error=exc) for j in chunk]
    except CredentialError:  # checked before sending: nothing arrived, the jobs stay retryable
        session.store.transitions(
            ((j.id, JobState.NEW, "credential refused", None, None, None) for j in chunk), strict=True
        )
        raise


def submit_claimed(
    session: Session, claimed: list[JobRecord], progress: Progress | None = None
) -> SubmitReport:
    """Hand claimed (``submitting``) jobs to their backends, recording each answer."""
    report = SubmitReport()
    for name, jobs in by_backend(claimed).items():
        backend = session.backend(name)
        for chunk in _chunks(jobs):
            _record_results(session, _submit_chunk(session, backend, chunk), report)
            if progress:
                progress(len(chunk))
    return report


def submit_records(
    session: Session, records: list[JobRecord], progress: Progress | None = None
) -> SubmitReport:
    """Store new records, claim them, submit them."""
    preflight(session, records)
    session.store.add(records)
    claimed_ids = set(session.store.claim_ids([r.id for r in records]))
    claimed = [r for r in records if r.id in claimed_ids]  # as stored: not read back (10,000 specs)
    for record in claimed:
        record.state = JobState.SUBMITTING
    return submit_claimed(session, claimed, progress)


def resubmit(session: Session, ids: Sequence[str], progress: Progress | None = None) -> SubmitReport:
    """``new`` jobs are submitted again; finished ones are copied to new jobs (parent_id)."""
    retry, copies = [], []
    for rec in session.store.get_many(ids):
        if rec.state == JobState.NEW:
            retry.append(rec.id)
        elif rec.state.final:
            copies.append(
                JobRecord(
                    id=new_id(), spec=rec.spec, backend=rec.backend, bulk_id=None, index=rec.index,
                    parent_id=rec.id, source=rec.source, params=rec.params,
                )
            )  # fmt: skip
        else:
            raise UsageError(
                f"job {rec.id} is {rec.state}; only new or finished jobs can be resubmitted",
                hint=f"`cops-grid cancel {rec.id}` first, or `cops-grid sync` if it is stuck submitting",
            )
    if copies:
        preflight(session, copies)
        session.store.add(copies)
    claimed = session.store.claim(retry + [c.id for c in copies])
    return submit_claimed(session, claimed, progress)
