"""``cops-grid sync``: repair what a crash or a network failure left behind.

1. Jobs stuck in ``submitting`` whose claiming process is gone are looked up on their
   backend by cops-grid id: found -> recorded with its native id; not found -> ``new``.
   Nothing is ever submitted without this check, so nothing runs twice.
2. ``new`` jobs (left by an interrupted submit, or refused transiently) are submitted.
3. Active jobs are refreshed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from computeops_grid.errors import BackendError
from computeops_grid.jobs.state import JobState
from computeops_grid.jobs.store import Change, owner_alive
from computeops_grid.logic.follow import refresh
from computeops_grid.logic.session import Session, by_backend
from computeops_grid.logic.submit import Progress, SubmitReport, submit_claimed

log = logging.getLogger(__name__)


@dataclass
class SyncReport:
    found: list[str] = field(default_factory=list)
    reset: list[str] = field(default_factory=list)
    still_unknown: list[str] = field(default_factory=list)
    submit: SubmitReport = field(default_factory=SubmitReport)


def _resolve_submitting(session: Session, report: SyncReport) -> None:
    stuck = session.store.ids(states=[JobState.SUBMITTING])
    owners = session.store.owners(stuck)
    orphans = session.store.get_many([i for i in stuck if not owner_alive(owners.get(i))])
    for name, jobs in by_backend(orphans).items():
        try:
            found = session.backend(name).lookup(jobs)
        except BackendError as exc:
            log.warning("cannot look up %d job(s) on %s: %s", len(jobs), name, exc.message)
            report.still_unknown.extend(j.id for j in jobs)
            continue
        changes: list[Change] = []
        for job in jobs:
            hit = found.get(job.id)
            if hit is None:
                changes.append(
                    (job.id, JobState.NEW, "not found on the backend after a crash", None, None, None)
                )
                report.reset.append(job.id)
            else:
                changes.append((job.id, hit.state, "found on the backend by sync", None, hit.native_id, None))
                report.found.append(job.id)
        session.store.transitions(changes, strict=True)


def sync(session: Session, progress: Progress | None = None, *, submit_new: bool = True) -> SyncReport:
    report = SyncReport()
    _resolve_submitting(session, report)
    if submit_new:
        pending = session.store.ids(states=[JobState.NEW])
        claimed = session.store.claim(pending)
        report.submit = submit_claimed(session, claimed, progress)
    refresh(session)
    return report
