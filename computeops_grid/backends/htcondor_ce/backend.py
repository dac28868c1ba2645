"""The HTCondor-CE backend: vanilla jobs straight to a CE's schedd, authenticated by a WLCG token.

Written to the ``htcondor2`` Python bindings (the API that 24.x and 25.x share): locate
the CE's schedd through its collector on port 9619, authenticate with SciTokens over SSL
(the CE's host certificate checked against ``ca_file``/``ca_dir``), submit one cluster per
call with spooling (what ``condor_submit -remote`` does; see ``submit.py`` for why not the
grid universe), query in bulk, read the history for jobs that left the queue, retrieve
outputs, remove. tests/htcondor/test_ce.py runs all of it against Debian's HTCondor 23.9
set up as an HTCondor-CE (tests/services/htcondor.py).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from computeops_grid import extras
from computeops_grid.backends.base import (
    BackendContext,
    BackendSettings,
    Capability,
    Health,
    StatusInfo,
    SubmitResult,
)
from computeops_grid.backends.common.cancel import not_found, split_ended, stopped
from computeops_grid.backends.common.jobdir import input_sources
from computeops_grid.backends.common.outputs import collect_outputs
from computeops_grid.backends.htcondor_ce import submit as condor_submit
from computeops_grid.credentials.token import FIX_HINT, Token, discover_token, read_token_file
from computeops_grid.errors import BackendError, BackendUnavailable, CopsError, CredentialError, Delivery
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState

log = logging.getLogger(__name__)

# JobStatus codes: 1 Idle, 2 Running, 3 Removed, 4 Completed, 5 Held, 6 Transferring output, 7 Suspended
STATE_MAP: dict[int, JobState] = {
    1: JobState.QUEUED,
    2: JobState.RUNNING,
    3: JobState.CANCELLED,
    4: JobState.COMPLETED,
    5: JobState.QUEUED,  # held: kept queued, the hold reason is the message
    6: JobState.RUNNING,
    7: JobState.RUNNING,
}
PROJECTION = ["ClusterId", "ProcId", "JobStatus", "ExitCode", "HoldReason", "CopsGridId"]
RETRIEVED = ".cops-retrieved"  # in a job's directory: its outputs came back from the CE


def bindings() -> Any:
    """``htcondor2``, imported without a local condor_config (a client needs none)."""
    os.environ.setdefault("CONDOR_CONFIG", "/dev/null")
    with extras.needed("the htcondor-ce backend", "htcondor"):
        import htcondor2  # noqa: PLC0415 - only jobs for a CE pay for loading the bindings

    return htcondor2


class HTCondorCESettings(BackendSettings):
    ce: str = Field(description="the CE host, optionally host:port (default port 9619)")
    token_file: Path | None = Field(
        default=None, description="bearer token file (default: WLCG token discovery)"
    )
    python: str = Field(default="python3", description="interpreter of the wrapper on the worker node")
    image_root: str | None = Field(default=None, description="image repository on the worker nodes")
    ca_file: Path | None = Field(
        default=None, description="CA certificates (PEM) that the CE's host certificate must chain to"
    )
    ca_dir: Path | None = Field(
        default=None, description="directory of trusted CAs, e.g. /etc/grid-security/certificates"
    )
    extra: dict[str, str] = Field(default_factory=dict, description="extra submit-description lines")


def native_id(ad: Any) -> str:
    return f"{int(ad['ClusterId'])}.{int(ad['ProcId'])}"


def attr(ad: Any, key: str) -> Any:
    """An attribute's value; None where it is missing or undefined (the schedd answers a
    projection with ``classad2.Value.Undefined``, an int enum whose ``str`` is ``"2"``)."""
    value = ad.get(key)
    classad2 = sys.modules.get("classad2")  # loaded with the bindings that made the ad
    if value is None or (classad2 is not None and isinstance(value, classad2.Value)):
        return None
    return value


def ad_state(ad: Any) -> StatusInfo:
    code = int(attr(ad, "JobStatus") or 0)
    state = STATE_MAP.get(code)
    if state is None:
        log.warning("unknown HTCondor JobStatus %s; keeping the job's state", code)
    exit_code = attr(ad, "ExitCode") if code == 4 else None  # running jobs keep an old one
    if state == JobState.COMPLETED and exit_code not in (None, 0):
        state = JobState.FAILED
    return StatusInfo(
        state=state or JobState.QUEUED,
        exit_code=int(exit_code) if exit_code is not None else None,
        message=str(attr(ad, "HoldReason") or "held") if code == 5 else "",
        native_state=str(code),
    )


class HTCondorCEBackend:
    """Jobs on an HTCondor-CE; payloads run through the wrapper sent as the executable."""

    name: ClassVar[str] = "htcondor-ce"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.BULK_SUBMIT, Capability.ARRAYS, Capability.CANCEL, Capability.OUTPUTS,
         Capability.LOGS, Capability.GPU, Capability.CONTAINERS, Capability.DETACHED}
    )  # fmt: skip
    Settings: ClassVar[type[BackendSettings]] = HTCondorCESettings

    def __init__(self, settings: HTCondorCESettings, context: BackendContext) -> None:
        self.settings = settings
        self.context = context

    # -- credentials and connection ----------------------------------------------
    def token(self) -> Token:
        """The bearer token, refused when missing or expired (before any connection)."""
        tok = read_token_file(self.settings.token_file) if self.settings.token_file else discover_token()
        if tok is None:
            raise CredentialError("no bearer token found for the HTCondor-CE", hint=FIX_HINT)
        if tok.expired:
            raise CredentialError(f"the bearer token from {tok.source} has expired", hint=FIX_HINT)
        return tok

    def token_file(self, tok: Token) -> Path:
        """A file holding the token (``$BEARER_TOKEN`` is written to a 0600 file first)."""
        if tok.path is not None:
            return tok.path
        folder = self.context.home / "tokens"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="bt_", dir=folder)  # mode 0600
        with os.fdopen(fd, "w") as fh:
            fh.write(tok.raw)
        return Path(name)

    @contextmanager
    def calling(self, what: str, *, sends: bool = True) -> Iterator[None]:
        """Bindings errors with their delivery: a call that ``sends`` a request may have
        arrived when it fails (the bindings cannot tell); locating the schedd sends nothing."""
        try:
            yield
        except CopsError:
            raise
        except Exception as exc:  # htcondor2.HTCondorException, and IndexError from 24.x (see notes)
            delivery = Delivery.MAY_HAVE_ARRIVED if sends else Delivery.NOT_SENT
            raise BackendUnavailable(f"{what} failed: {exc}", backend=self.name, delivery=delivery) from exc

    def schedd(self, token_path: Path) -> Any:
        htc = bindings()
        htc.param["SEC_CLIENT_AUTHENTICATION_METHODS"] = "SCITOKENS"
        htc.param["SCITOKENS_FILE"] = str(token_path)
        if self.settings.ca_file:  # the token travels over SSL: the CE's host certificate is checked
            htc.param["AUTH_SSL_CLIENT_CAFILE"] = str(self.settings.ca_file)
        if self.settings.ca_dir:
            htc.param["AUTH_SSL_CLIENT_CADIR"] = str(self.settings.ca_dir)
        host = self.settings.ce.split(":")[0]
        pool = self.settings.ce if ":" in self.settings.ce else f"{host}:{condor_submit.CE_PORT}"
        with self.calling(f"locating the schedd of {pool}", sends=False):
            ad = htc.Collector(pool).locate(htc.DaemonType.Schedd, host)
            return htc.Schedd(ad)

    # -- operations ----------------------------------------------------------------
    def description(self, jobs: Sequence[JobRecord]) -> condor_submit.SubmitDescription:
        return condor_submit.describe(
            jobs, jobs_dir=self.context.jobs_dir, pilot=self.context.pilot, python=self.settings.python,
            image_root=self.settings.image_root, inputs=input_sources(jobs[0]), extra=self.settings.extra,
        )  # fmt: skip

    def preflight(self, jobs: Sequence[JobRecord]) -> None:
        self.token()

    def clusters(self, jobs: Sequence[JobRecord]) -> list[list[JobRecord]]:
        """Jobs that can share one submit description (same resources and inputs)."""
        groups: dict[str, list[JobRecord]] = {}
        for job in jobs:
            key = job.spec.resources.model_dump_json() + "|".join(job.spec.inputs) + job.source
            groups.setdefault(key, []).append(job)
        return list(groups.values())

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]:
        token_path = self.token_file(self.token())
        try:
            schedd = self.schedd(token_path)
        except BackendError as exc:  # nothing was sent: the jobs stay new and retryable
            return [SubmitResult(j.id, error=exc) for j in jobs]
        results: list[SubmitResult] = []
        for cluster in self.clusters(jobs):
            for job in cluster:
                (self.context.jobs_dir / job.id).mkdir(parents=True, exist_ok=True)
            desc = self.description(cluster)
            htc = bindings()
            # htcondor2 24.0's submit() needs a queue statement in the description even with
            # itemdata (else IndexError) and misreads inline items (Submit.itemdata() splits
            # them into characters): the whole text, items given apart; it also prints the
            # file it builds, kept off the CLI's stdout
            with self.calling("submitting to the CE"), contextlib.redirect_stdout(io.StringIO()):
                sub = htc.Submit(desc.text)
                res = schedd.submit(sub, spool=True, itemdata=iter(desc.items))  # unknown on failure
                schedd.spool(res)
            first = res.first_proc()
            results += [
                SubmitResult(j.id, native_id=f"{res.cluster()}.{first + i}", state=JobState.QUEUED)
                for i, j in enumerate(cluster)
            ]
        return results

    def _query(self, constraint: str) -> list[Any]:
        schedd = self.schedd(self.token_file(self.token()))
        with self.calling("querying the CE"):
            return list(schedd.query(constraint=constraint, projection=PROJECTION))

    def lookup(self, jobs: Sequence[JobRecord]) -> dict[str, SubmitResult | None]:
        ids = ", ".join(f'"{j.id}"' for j in jobs)
        found: dict[str, SubmitResult | None] = {j.id: None for j in jobs}
        for ad in self._query(f"member(CopsGridId, {{{ids}}})"):
            job_id = str(ad["CopsGridId"])
            if job_id in found:
                found[job_id] = SubmitResult(job_id, native_id=native_id(ad), state=ad_state(ad).state)
        return found

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        wanted = {j.native_id: j.id for j in jobs if j.native_id}
        if not wanted:
            return {}
        clusters = sorted({n.split(".")[0] for n in wanted})
        ads = self._query(" || ".join(f"ClusterId == {c}" for c in clusters))
        found = {wanted[native_id(ad)]: ad_state(ad) for ad in ads if native_id(ad) in wanted}
        gone = [n for n, i in wanted.items() if i not in found]
        if gone:  # left the queue (outputs retrieved, removed): the schedd's history has them
            for ad in self._history(gone):
                if native_id(ad) in wanted:
                    found.setdefault(wanted[native_id(ad)], ad_state(ad))
        return found

    def _history(self, native_ids: Sequence[str]) -> list[Any]:
        constraint = " || ".join(
            f"(ClusterId == {c} && ProcId == {p})" for c, p in (n.split(".") for n in native_ids)
        )
        schedd = self.schedd(self.token_file(self.token()))
        with self.calling("reading the CE's job history"):
            return list(schedd.history(constraint, PROJECTION, match=len(native_ids)))

    def cancel(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """Remove the jobs still in the CE's queue (``Removed`` is final on the schedd); a job
        that already ended is answered as it ended and not touched. When the schedd does not
        say that every removal succeeded, ``status`` confirms each job."""
        before = self.status(jobs)
        answers, todo = split_ended(jobs, before)
        answers.update({j.id: not_found(j, self.name) for j in todo if j.id not in before})
        todo = [j for j in todo if j.id in before]
        spec = [str(j.native_id) for j in todo]
        if spec:
            schedd = self.schedd(self.token_file(self.token()))
            with self.calling("removing jobs on the CE"):
                result = schedd.act(bindings().JobAction.Remove, spec, reason="cops-grid cancel")
            if result is not None and int(result.get("TotalSuccess", 0)) == len(spec):
                answers.update({j.id: stopped("3") for j in todo})
        return answers

    def _retrieve(self, job: JobRecord) -> Path:
        """The job's directory holding its outputs, fetched from the CE's spool once (the
        job then leaves the CE's queue for its history: a second retrieve would find nothing)."""
        if not job.native_id:
            raise BackendError(f"job {job.id} was never accepted by the CE", backend=self.name)
        workdir = self.context.jobs_dir / job.id
        marker = workdir / RETRIEVED
        if not marker.exists():
            cluster, proc = job.native_id.split(".")
            schedd = self.schedd(self.token_file(self.token()))
            with self.calling("retrieving outputs from the CE"):
                schedd.retrieve(f"ClusterId == {cluster} && ProcId == {proc}")
            workdir.mkdir(parents=True, exist_ok=True)
            marker.touch()
        return workdir

    def fetch_outputs(self, job: JobRecord, dest: Path) -> list[Path]:
        workdir = self._retrieve(job)
        patterns = [condor_submit.STDOUT, condor_submit.STDERR, "cops-report.json", *job.spec.outputs]
        return collect_outputs(workdir, patterns, dest)

    def logs(self, job: JobRecord) -> str:
        """What the job printed: known once it ended and its outputs came back from the CE."""
        workdir = self.context.jobs_dir / job.id
        ended = job.state in (JobState.COMPLETED, JobState.FAILED)  # a removed job has no outputs
        if ended and job.native_id and not (workdir / RETRIEVED).exists():
            self._retrieve(job)
        parts = [workdir / condor_submit.STDOUT, workdir / condor_submit.STDERR]
        return "".join(p.read_text(errors="replace") for p in parts if p.is_file())

    def describe(self, jobs: Sequence[JobRecord]) -> str:
        return "".join(self.description(c).text for c in self.clusters(jobs))

    def check(self) -> Health:
        try:
            self.schedd(self.token_file(self.token()))
        except CopsError as exc:
            return Health(reachable=False, detail=exc.message)
        return Health(reachable=True, detail=f"schedd of {self.settings.ce} located")
