"""The Python face of cops-grid: a :class:`Client` does what the ``cops-grid`` job commands do.

The CLI is a thin layer over this class (it parses, calls, prints); both return the same
records (:class:`~computeops_grid.api.records.JobInfo`). Nothing here prints, exits or
assumes a terminal: progress is a callback, problems are the typed errors of
:mod:`computeops_grid.errors` (``message`` and ``hint``), and a client keeps its own
configuration and store, so two clients with different homes work side by side in one process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, Union

from computeops_grid.api.records import CancelInfo, JobInfo, job_info
from computeops_grid.api.results import Cancellation, Repair, Submission
from computeops_grid.config import Config, load_config
from computeops_grid.errors import JobsFailed
from computeops_grid.jobs.formats.common import ReadOptions
from computeops_grid.jobs.loader import expand, load_jobs, validate_spec
from computeops_grid.jobs.model import JobSpec
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState
from computeops_grid.logic import export as export_logic
from computeops_grid.logic import follow, provenance, storage_plan
from computeops_grid.logic import submit as submit_logic
from computeops_grid.logic.backends import PROBE_SECONDS, backend_overview
from computeops_grid.logic.session import Session
from computeops_grid.logic.sync import sync as sync_logic

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
JobInput = Union[PathLike, JobSpec, Mapping[str, Any]]  # a job file, or a job built in code
JobRef = Union[str, JobInfo]  # a job id (or unique prefix), or a record the client returned
Refs = Union[JobRef, Iterable[JobRef], Submission]
SubmitProgress = Callable[[int, int], None]  # (jobs handed to backends so far, total)
WaitProgress = Callable[[list[JobInfo]], None]  # every job's record after each poll
Outcome = TypeVar("Outcome", Submission, Cancellation)


class Prepared:
    """Jobs read, validated and expanded (one per parametric value), with their ids; not
    stored yet. ``notes``: what native job files hold that the jobs do not carry."""

    def __init__(self, records: list[JobRecord], notes: list[str]) -> None:
        self.records = records
        self.notes = notes

    @property
    def jobs(self) -> list[JobInfo]:
        return [job_info(r) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)


class Client:
    """Submit and follow jobs from Python: one configuration, one job store.

    ``home`` is the data directory (store, job directories, images, ``config.yaml``): by
    default ``$COPS_GRID_HOME`` as it is now. ``config`` is a configuration file, or a
    :class:`~computeops_grid.config.Config`; by default the one the CLI would read, or
    ``home/config.yaml`` when ``home`` is given (the environment is then not consulted).
    The store is opened per call; ``with Client() as c:`` keeps it open across calls.
    """

    def __init__(self, home: PathLike | None = None, *, config: PathLike | Config | None = None) -> None:
        own_home = Path(home).expanduser() if home is not None else None
        if isinstance(config, Config):
            self.config = config.model_copy()  # add_resource() on one client changes no other
            self.config._home = own_home or config.home
        else:
            self.config = load_config(Path(config) if config is not None else None, home=own_home)
        self.home: Path = self.config.home  # pinned now: a later change of the environment moves nothing
        self._open: Session | None = None

    def __repr__(self) -> str:
        return f"Client(home={str(self.home)!r})"

    # -- the store ------------------------------------------------------------------------
    def __enter__(self) -> Client:
        self._open = Session.open(self.config)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    @contextmanager
    def _session(self) -> Iterator[Session]:
        if self._open is not None:
            yield self._open
            return
        with Session.open(self.config) as session:
            yield session

    def _resolve(self, session: Session, refs: Refs | None) -> list[str]:
        if refs is None:
            return []
        if isinstance(refs, Submission):
            return refs.ids
        many: Iterable[JobRef] = [refs] if isinstance(refs, (str, Mapping)) else refs  # type: ignore[list-item]
        return session.store.resolve([r if isinstance(r, str) else r["id"] for r in many])

    # -- jobs in --------------------------------------------------------------------------
    def load(
        self, jobs: JobInput | Sequence[JobInput], *, backend: str | None = None, image: str | None = None
    ) -> Prepared:
        """Read job files (YAML, JDL, xRSL, ADL, HTCondor submit files) and jobs built in code
        (a :class:`~computeops_grid.jobs.model.JobSpec` or a mapping of its fields) into jobs
        with ids, parametric ones expanded. Raises ``JobFileError`` naming the file (or
        ``<python>`` for a job built in code) and the field. Relative inputs of a job built
        in code are taken from the working directory at submit time."""
        items: Sequence[JobInput] = [jobs] if isinstance(jobs, (str, os.PathLike, JobSpec, Mapping)) else jobs
        notes: list[str] = []
        target = self.config.resource(backend or self.config.default_backend).type
        expanded = []
        for number, item in enumerate(items):
            if isinstance(item, (str, os.PathLike)):
                expanded += load_jobs([Path(item)], ReadOptions(image=image, target=target), notes)
            else:
                where = "<python>" if len(items) == 1 else f"<python>[{number}]"
                expanded += expand(validate_spec(dict(item) if isinstance(item, Mapping) else item, where))
        with self._session() as session:
            return Prepared(submit_logic.records_from_jobs(session, expanded, backend), notes)

    def describe(self, jobs: Prepared | JobInput | Sequence[JobInput], *, backend: str | None = None) -> str:
        """The backend-native description (batch script, JDL, xRSL, ...); nothing is stored."""
        prepared = jobs if isinstance(jobs, Prepared) else self.load(jobs, backend=backend)
        with self._session() as session:
            return submit_logic.describe(session, prepared.records)

    def storage_plan(self, prepared: Prepared) -> list[str]:
        """Who moves each storage file (``inputs:`` URLs, ``outputs:`` with ``to:``), one line each."""
        with self._session() as session:
            return storage_plan.plan(session, prepared.records)

    def submit(
        self,
        jobs: Prepared | JobInput | Sequence[JobInput],
        *,
        backend: str | None = None,
        image: str | None = None,
        progress: SubmitProgress | None = None,
        check: bool = True,
    ) -> Submission:
        """Store and submit jobs (bulk: one backend call per ~100 jobs; a parametric job is
        one array where the backend has them). Every job is stored before any backend call.

        With ``check`` (the default) a submit that left jobs unsent or unconfirmed raises its
        typed error (``BackendUnavailable``, ``DeliveryUncertain``, ``BackendRejected``);
        the jobs stay in the store. With ``check=False`` look at the returned outcome instead.
        """
        prepared = jobs if isinstance(jobs, Prepared) else self.load(jobs, backend=backend, image=image)
        with self._session() as session:
            report = submit_logic.submit_records(session, prepared.records, _counter(progress, len(prepared)))
            records = session.store.get_many([r.id for r in prepared.records])
        return _checked(_submission(report, records, prepared.notes), check)

    def resubmit(
        self,
        refs: Refs,
        *,
        progress: SubmitProgress | None = None,
        check: bool = True,
        same_image: bool = False,
    ) -> Submission:
        """Submit again: jobs kept ``new`` after an error, or copies of finished jobs (new ids).
        ``same_image``: copies run the image each job ran, pinned by its digest (or fail)."""
        with self._session() as session:
            ids = self._resolve(session, refs)
            rerun = provenance.rerun_same_image if same_image else submit_logic.resubmit
            report = rerun(session, ids, _counter(progress, len(ids)))
            records = session.store.get_many(_touched(report))
        return _checked(_submission(report, records, []), check)

    # -- following --------------------------------------------------------------------------
    def status(self, refs: Refs | None = None) -> list[JobInfo]:
        """Ask the backends and record what changed: the jobs named, or every active job."""
        with self._session() as session:
            return [
                job_info(r) for r in follow.refresh(session, self._resolve(session, refs) if refs else None)
            ]

    def jobs(
        self,
        *,
        states: Iterable[JobState | str] = (),
        backend: str | None = None,
        limit: int | None = None,
        image_digest: str | None = None,
    ) -> list[JobInfo]:
        """Jobs in the store, newest first (no backend is asked; see :meth:`status`);
        ``image_digest`` (``sha256:<hex>`` or a prefix) keeps the jobs that ran that image."""
        wanted = [JobState(s) for s in states]
        digest = provenance.normalise_digest(image_digest) if image_digest is not None else None
        with self._session() as session:
            rows = session.store.summaries(states=wanted, backend=backend, limit=limit, image_digest=digest)
            return [job_info(r) for r in rows]

    def wait(
        self,
        refs: Refs,
        *,
        timeout: float | None = None,
        poll: float = 0.5,
        progress: WaitProgress | None = None,
        check: bool = False,
    ) -> list[JobInfo]:
        """Poll until every job has ended (or never left ``new``/``submitting``), or until
        ``timeout`` seconds passed: jobs still queued or running are returned as they are.
        ``progress`` gets every job's record after each poll. With ``check``, a job that
        failed or was cancelled raises ``JobsFailed``."""

        def tick(records: list[JobRecord]) -> None:
            if progress is not None:
                progress([job_info(r) for r in records])

        with self._session() as session:
            records = follow.wait(
                session, self._resolve(session, refs), poll=poll, timeout=timeout, progress=tick
            )
        infos = [job_info(r) for r in records]
        bad = [r for r in records if r.state in (JobState.FAILED, JobState.CANCELLED)]
        if check and bad:
            raise JobsFailed(
                f"{len(bad)} of {len(records)} job(s) did not complete ({bad[0].id}: {bad[0].message})",
                hint="`cops-grid logs ID` shows what a job printed",
            )
        return infos

    def logs(self, ref: JobRef) -> str:
        """A job's stdout and stderr as its backend keeps them."""
        with self._session() as session:
            return follow.logs(session, self._resolve(session, ref)[0])

    def outputs(self, ref: JobRef, dest: PathLike | None = None) -> list[Path]:
        """Fetch a job's declared outputs, stdout, stderr and wrapper report into ``dest``
        (default ``./<job id>``); returns the paths written."""
        with self._session() as session:
            job_id = self._resolve(session, ref)[0]
            return follow.outputs(session, job_id, Path(dest) if dest is not None else Path(job_id))

    def show(self, ref: JobRef) -> dict[str, Any]:
        """What actually ran for a job (the record ``cops-grid show --json`` prints): the image
        and its digest, the runtime and why others were refused, the node, times, usage, exit."""
        with self._session() as session:
            return provenance.show(session, self._resolve(session, ref)[0])

    def export(self, refs: Refs, dest: PathLike) -> Path:
        """Write a Workflow Run RO-Crate (Process Run Crate profile) of ended jobs into
        ``dest`` (new or empty; needs the ``crate`` extra); returns the crate's directory."""
        export_logic.require_rocrate()  # a missing extra is said before anything else
        with self._session() as session:
            return export_logic.export_crate(session, self._resolve(session, refs), Path(dest))

    def cancel(
        self, refs: Refs, *, confirm_wait: float = follow.CONFIRM_TIMEOUT, check: bool = True
    ) -> Cancellation:
        """Cancel jobs; ``cancelled`` only once their backend confirms it (at most
        ``confirm_wait`` seconds). A job that had ended keeps its state (outcome ``ended``).
        With ``check``: a backend not reached raises its error, a refusal
        ``BackendRejected``, a cancel not yet confirmed ``CancelUnconfirmed``."""
        with self._session() as session:
            report = follow.cancel(session, self._resolve(session, refs), confirm_timeout=confirm_wait)
        jobs: list[CancelInfo] = [{**job_info(r), "outcome": report.outcome(r.id)} for r in report.records]
        reasons = dict(report.refused) | {i: e.message for i, e in report.errors.items()}
        errors = list(dict.fromkeys(report.errors.values()))
        return _checked(Cancellation(jobs, reasons, errors), check)

    def sync(self, *, progress: SubmitProgress | None = None) -> Repair:
        """Repair after a crash: find jobs stuck ``submitting`` on their backend (never
        submitting twice), submit jobs left ``new``, refresh active jobs."""
        with self._session() as session:
            pending = len(session.store.ids(states=[JobState.NEW]))
            report = sync_logic(session, _counter(progress, pending))
            submit = _submission(report.submit, session.store.get_many(_touched(report.submit)), [])
        return Repair(list(report.found), list(report.reset), list(report.still_unknown), submit)

    def backends(self, *, timeout: float = PROBE_SECONDS) -> list[dict[str, Any]]:
        """Every resource and backend type: whether it answers, its credential, capabilities."""
        with self._session() as session:
            return backend_overview(session, timeout=timeout)


def _counter(progress: SubmitProgress | None, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(done, total)

    return advance


def _touched(report: submit_logic.SubmitReport) -> list[str]:
    return [*report.submitted, *report.failed, *report.retryable, *report.unknown]


def _submission(report: submit_logic.SubmitReport, records: list[JobRecord], notes: list[str]) -> Submission:
    return Submission(
        [job_info(r) for r in records], list(report.submitted), dict(report.failed),
        dict(report.retryable), list(report.unknown), report.tool_missing, notes,
    )  # fmt: skip


def _checked(result: Outcome, check: bool) -> Outcome:
    error = result.error() if check else None
    if error is not None:
        raise error
    return result
