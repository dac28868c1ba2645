"""The HTCondor-CE backend: grid-universe jobs to a CE's schedd, authenticated by a WLCG token.

Written to the ``htcondor2`` Python bindings (the API that 24.x and 25.x share): locate
the CE's schedd through its collector on port 9619, submit one cluster per call with
spooling, query in bulk, retrieve outputs, remove. No HTCondor daemon can run on the
development machine, so the live calls are exercised only against a closed port there;
the submit descriptions are checked offline with the bindings' own parser.
"""

from __future__ import annotations

import logging
import os
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
    extra: dict[str, str] = Field(default_factory=dict, description="extra submit-description lines")


def native_id(ad: Any) -> str:
    return f"{int(ad['ClusterId'])}.{int(ad['ProcId'])}"


def ad_state(ad: Any) -> StatusInfo:
    code = int(ad.get("JobStatus", 0))
    state = STATE_MAP.get(code)
    if state is None:
        log.warning("unknown HTCondor JobStatus %s; keeping the job's state", code)
    exit_code = ad.get("ExitCode")
    if state == JobState.COMPLETED and exit_code not in (None, 0):
        state = JobState.FAILED
    return StatusInfo(
        state=state or JobState.QUEUED,
        exit_code=int(exit_code) if exit_code is not None else None,
        message=str(ad.get("HoldReason") or ""),
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
        host = self.settings.ce.split(":")[0]
        pool = self.settings.ce if ":" in self.settings.ce else f"{host}:{condor_submit.CE_PORT}"
        with self.calling(f"locating the schedd of {pool}", sends=False):
            ad = htc.Collector(pool).locate(htc.DaemonType.Schedd, host)
            return htc.Schedd(ad)

    # -- operations ----------------------------------------------------------------
    def description(
        self, jobs: Sequence[JobRecord], token_path: Path | None
    ) -> condor_submit.SubmitDescription:
        return condor_submit.describe(
            jobs, ce=self.settings.ce, token_file=token_path, jobs_dir=self.context.jobs_dir,
            pilot=self.context.pilot, python=self.settings.python, image_root=self.settings.image_root,
            inputs=input_sources(jobs[0]), extra=self.settings.extra,
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
            desc = self.description(cluster, token_path)
            htc = bindings()
            with self.calling("submitting to the CE"):  # outcome unknown on failure: sync decides
                res = schedd.submit(htc.Submit(desc.body), spool=True, itemdata=iter(desc.items))
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
        return {wanted[native_id(ad)]: ad_state(ad) for ad in ads if native_id(ad) in wanted}

    def cancel(self, jobs: Sequence[JobRecord]) -> None:
        spec = [str(j.native_id) for j in jobs if j.native_id]
        if spec:
            schedd = self.schedd(self.token_file(self.token()))
            with self.calling("removing jobs on the CE"):
                schedd.act(bindings().JobAction.Remove, spec, reason="cops-grid cancel")

    def fetch_outputs(self, job: JobRecord, dest: Path) -> list[Path]:
        if not job.native_id:
            raise BackendError(f"job {job.id} was never accepted by the CE", backend=self.name)
        schedd = self.schedd(self.token_file(self.token()))
        with self.calling("retrieving outputs from the CE"):
            schedd.retrieve(f"ClusterId == {job.native_id.split('.')[0]}")
        workdir = self.context.jobs_dir / job.id
        patterns = [condor_submit.STDOUT, condor_submit.STDERR, "cops-report.json", *job.spec.outputs]
        return collect_outputs(workdir, patterns, dest)

    def logs(self, job: JobRecord) -> str:
        workdir = self.context.jobs_dir / job.id
        parts = [workdir / condor_submit.STDOUT, workdir / condor_submit.STDERR]
        return "".join(p.read_text(errors="replace") for p in parts if p.is_file())

    def describe(self, jobs: Sequence[JobRecord]) -> str:
        tok = self.settings.token_file or Path("$BEARER_TOKEN_FILE")
        return "".join(self.description(c, tok).text for c in self.clusters(jobs))

    def check(self) -> Health:
        try:
            self.schedd(self.token_file(self.token()))
        except CopsError as exc:
            return Health(reachable=False, detail=exc.message)
        return Health(reachable=True, detail=f"schedd of {self.settings.ce} located")
