"""ARC CE backend (ARC 6/7): REST (bulk ADL submit, delegation, uploads) or the arc* tools.

``transport: rest`` speaks the CE's REST interface from Python (only ``pip install``
needed); ``transport: cli`` runs the ARC client tools (:mod:`arc_cli`); ``auto`` (the
default) uses REST when the CE offers it and the tools otherwise (CEs without REST).

Every job runs the pilot wrapper as its executable (uploaded with the inputs). The job
name on the CE is ``cops-<id>``, which is how :meth:`lookup` finds a job whose submit
reply was lost, without submitting it again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from fnmatch import fnmatch
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from computeops_grid import worker
from computeops_grid.backends.arc import desc
from computeops_grid.backends.arc import states as arc_states
from computeops_grid.backends.arc.cli import ArcCli, tools_installed
from computeops_grid.backends.arc.delegation_cache import DelegationCache
from computeops_grid.backends.arc.rest import ArcRest
from computeops_grid.backends.arc.uploads import SharedFiles, upload_all
from computeops_grid.backends.base import (
    BackendContext,
    BackendSettings,
    Capability,
    Health,
    StatusInfo,
    SubmitResult,
)
from computeops_grid.backends.common.cancel import not_found
from computeops_grid.backends.common.jobdir import input_sources
from computeops_grid.backends.common.payload import PILOT_FILE
from computeops_grid.backends.common.retry import with_retries
from computeops_grid.credentials.preflight import check_proxy, health_problems
from computeops_grid.errors import BackendError, BackendRejected, CopsError, DeliveryUncertain
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState

log = logging.getLogger(__name__)
WAITING = frozenset({"ACCEPTING", "ACCEPTED", "PREPARING"})  # REST states before the inputs are in
SETTLE_S = 3.0  # lookup: no new job of a bulk for this long means A-REX is done creating them


def default_proxy() -> str:
    return os.environ.get("X509_USER_PROXY") or f"/tmp/x509up_u{os.getuid()}"  # noqa: S108 - grid convention


class ArcSettings(BackendSettings):
    ce: str  # arc://host[:port], host[:port] or https://host:port/arex
    queue: str | None = None
    vo: str | None = None  # the VO the proxy must carry (preflight)
    proxy: str | None = None  # default: $X509_USER_PROXY, then /tmp/x509up_u<uid>
    ca_dir: str | None = None  # default: $X509_CERT_DIR, then /etc/grid-security/certificates
    runtime_environments: list[str] = []
    gpu_runtime_environment: str | None = None
    image_root: str | None = None  # image repository as the worker nodes see it
    description_format: Literal["adl", "xrsl"] = "adl"  # what --dry-run prints
    timeout: float = 30.0
    transport: Literal["auto", "rest", "cli"] = "auto"  # auto: REST if the CE offers it, else arc* tools
    cli_endpoint_type: str = "arcrest"  # arcsub -T: arcrest, emies, gridftpjob
    upload_workers: int = Field(
        default=8, ge=1, le=64, description="jobs whose inputs are uploaded at the same time (REST)"
    )


class ArcBackend:
    """One ARC CE reached over REST with the user's VOMS proxy."""

    name: ClassVar[str] = "arc"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.BULK_SUBMIT,
            Capability.CANCEL,
            Capability.OUTPUTS,
            Capability.LOGS,
            Capability.CONTAINERS,
            Capability.DETACHED,
            Capability.GPU,
        }
    )
    Settings: ClassVar[type[BackendSettings]] = ArcSettings

    def __init__(self, settings: ArcSettings, context: BackendContext) -> None:
        self.settings = settings
        self.context = context
        self.proxy = Path(settings.proxy or default_proxy())
        ca_dir = settings.ca_dir or os.environ.get("X509_CERT_DIR") or "/etc/grid-security/certificates"
        self.rest = ArcRest(
            settings.ce, self.proxy, ca_dir, timeout=settings.timeout, name=self.name,
            delegations=DelegationCache(context.home / "arc" / "delegations.json"),
        )  # fmt: skip
        self.opts = desc.DescOptions(
            queue=settings.queue,
            runtime_environments=tuple(settings.runtime_environments),
            gpu_runtime_environment=settings.gpu_runtime_environment,
            image_root=settings.image_root,
        )
        self.cli = ArcCli(
            self.rest.base, self.proxy, ca_dir, context.home / "arc" / "jobs.dat",
            opts=self.opts, pilot=context.pilot, endpoint_type=settings.cli_endpoint_type,
            timeout=settings.timeout, name=self.name,
        )  # fmt: skip
        self._use_cli: bool | None = None

    def tools(self) -> ArcCli | None:
        """The arc* tools when they are the transport (by option, or ``auto`` on a CE without REST)."""
        if self._use_cli is None:
            mode = self.settings.transport
            if mode == "auto":
                try:
                    self.rest.discover_version()
                    mode = "rest"
                except BackendError as exc:  # the CE answered, but no REST we speak
                    if exc.transient or not tools_installed():
                        raise
                    mode = "cli"
            self._use_cli = mode == "cli"
        return self.cli if self._use_cli else None

    def _job_id(self, job: JobRecord) -> str:
        return (job.native_id or "").rstrip("/").rsplit("/", 1)[-1]

    def _native(self, ce_id: str) -> str:
        return f"{self.rest.api}/jobs/{ce_id}"

    # -- submit ---------------------------------------------------------------------

    def preflight(self, jobs: Sequence[JobRecord]) -> None:
        """Refuse before anything is stored: the proxy exists, is 0600, valid, of the right VO."""
        walltimes = [j.spec.resources.walltime or 0 for j in jobs]
        check_proxy(self.proxy, vo=self.settings.vo, walltime=max(walltimes, default=0) or None)

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]:
        """All descriptions in one request, then the wrapper and inputs into each session dir."""
        if tools := self.tools():
            return tools.submit(jobs)
        for job in jobs:
            input_sources(job)  # a missing input is the job file's fault: refuse before the CE sees it
        # a second delegation is harmless; a second submit is not (the logic layer keeps a
        # submit that may have arrived for `sync`, which finds the jobs by name)
        delegation = with_retries(self.rest.delegate, idempotent=True, what="delegation")
        document = desc.adl_bulk(list(jobs), self.opts, delegation)
        replies = with_retries(lambda: self.rest.submit(document), idempotent=False, what="submit")
        if len(replies) != len(jobs):
            raise DeliveryUncertain(
                f"the CE {self.rest.base} answered {len(replies)} results for {len(jobs)} jobs",
                backend=self.name,
            )
        results = [self._accepted(job, reply) for job, reply in zip(jobs, replies)]
        shared = SharedFiles()  # the wrapper (and inputs many jobs name) read once
        failed = upload_all(
            [(r.job_id, self._uploader(job, r, shared)) for job, r in zip(jobs, results) if r.native_id],
            workers=self.settings.upload_workers,
        )
        for job_id, why in failed.items():  # the job exists on the CE: record it; its status will tell
            log.warning("job %s is on the CE but its inputs did not all arrive: %s", job_id, why)
        return results

    def _uploader(self, job: JobRecord, result: SubmitResult, shared: SharedFiles) -> Callable[[], None]:
        ce_id = str(result.native_id).rstrip("/").rsplit("/", 1)[-1]
        return lambda: self._upload(job, ce_id, shared)

    def _accepted(self, job: JobRecord, reply: dict[str, object]) -> SubmitResult:
        if str(reply.get("status-code")) != "201" or "id" not in reply:
            reason = reply.get("reason") or reply.get("status-code")
            error = BackendRejected(f"the CE {self.rest.base} refused the job: {reason}", backend=self.name)
            return SubmitResult(job_id=job.id, error=error)
        return SubmitResult(job_id=job.id, native_id=self._native(str(reply["id"])), state=JobState.QUEUED)

    def _upload(self, job: JobRecord, ce_id: str, shared: SharedFiles | None = None) -> None:
        """The wrapper and the inputs into the job's session dir (the CE waits for them)."""
        files = shared or SharedFiles()
        self.rest.upload(ce_id, PILOT_FILE, files.read(self.context.pilot))
        if desc.needs_launcher(job, self.opts):
            self.rest.upload(ce_id, desc.LAUNCHER_FILE, files.read(worker.path(worker.DIRAC_LAUNCHER)))
        for name in desc.wrapper_files(job):  # the wrapper's mover, for the storage URLs it moves
            self.rest.upload(ce_id, name, worker.path(name).read_bytes())
        for src in input_sources(job):
            self.rest.upload(ce_id, src.name, files.read(src))

    # -- status, lookup, cancel -----------------------------------------------------

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """One bulk ``status`` call; finished jobs get exit code and failure reason from ``info``."""
        if tools := self.tools():
            return tools.status(jobs)
        ids = {self._job_id(j): j for j in jobs if j.native_id}
        states = self.rest.status(list(ids))
        final = [i for i, s in states.items() if s.upper() in arc_states.FINAL_NATIVE]
        details = self.rest.activities(final) if final else {}
        result: dict[str, StatusInfo] = {}
        for ce_id, native in states.items():
            activity = details.get(ce_id, {})
            code = activity.get("ExitCode")
            exit_code = int(code) if isinstance(code, str) and code.lstrip("-").isdigit() else None
            info = arc_states.to_status(native, exit_code, str(activity.get("Error", "")))
            if info is not None and ce_id in ids:
                result[ids[ce_id].id] = info
        return result

    def lookup(self, jobs: Sequence[JobRecord]) -> dict[str, SubmitResult | None]:
        """Find jobs by their name ``cops-<id>`` among this user's jobs on the CE.

        A job found still waiting for its inputs (the reply to the submit was lost, so the
        client never uploaded them) gets them now, so it runs instead of timing out.

        A-REX creates the jobs of one submit request one after the other and goes on when
        the client is gone (reply lost, client killed): while some of ``jobs`` are there and
        others not, those may still be on their way, so the CE is asked again until no more
        appear (within ``timeout``); ``sync`` would submit a missing one a second time.
        """

        def present(names: dict[str, str]) -> int:
            return sum(desc.job_name(job) in names for job in jobs)

        names = self._names()
        deadline = time.monotonic() + self.settings.timeout
        while 0 < present(names) < len(jobs) and time.monotonic() < deadline:
            time.sleep(SETTLE_S)
            again = self._names()
            if present(again) == present(names):
                break
            names = again
        hits = {job.id: names.get(desc.job_name(job)) for job in jobs}
        waiting = {i for i, s in self.rest.status([c for c in hits.values() if c]).items() if s in WAITING}
        found: dict[str, SubmitResult | None] = {}
        for job in jobs:
            ce_id = hits[job.id]
            found[job.id] = SubmitResult(job_id=job.id, native_id=self._native(ce_id)) if ce_id else None
            if ce_id in waiting:
                log.info(
                    "job %s was found waiting for its inputs on %s: uploading them", job.id, self.rest.base
                )
                self._upload(job, ce_id)
        if any(found.values()) and self.tools():
            self.cli.sync()  # arcstat & co. only know jobs in their job list
        return found

    def _names(self) -> dict[str, str]:
        """This user's jobs on the CE: name -> CE job id."""
        names: dict[str, str] = {}
        for listed, activity in self.rest.activities(self.rest.list_jobs()).items():
            # A-REX names a job in its info only once it has processed it (seconds after the
            # submit): until then the name comes from the description the CE stored
            named = activity.get("Name") or self.rest.description_name(listed)
            if named:
                names[str(named)] = listed
        return names

    def cancel(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """Ask the CE to kill the jobs. A-REX answers 202 "queued for killing", also for a job
        that already ended (which stays as it ended), and takes seconds to get to ``KILLED``:
        accepted jobs are left out of the answer for ``status`` to confirm."""
        if tools := self.tools():
            return tools.cancel(jobs)
        answers = {j.id: not_found(j, self.name) for j in jobs if not j.native_id}
        by_ce = {self._job_id(j): j for j in jobs if j.native_id}
        for reply in self.rest.kill(list(by_ce)):
            job = by_ce.get(str(reply.get("id")))
            code = str(reply.get("status-code"))
            if job is not None and code not in ("200", "201", "202"):
                why = f"the CE {self.rest.base} refused to kill it: {code} {reply.get('reason') or ''}"
                answers[job.id] = StatusInfo(job.state, message=why.strip(), native_state=code)
        return answers

    # -- files, dry run, health -----------------------------------------------------

    def fetch_outputs(self, job: JobRecord, dest: Path) -> list[Path]:
        if tools := self.tools():
            return tools.fetch_outputs(job, dest)
        ce_id = self._job_id(job)
        fetched = []
        for name in self.rest.session_files(ce_id):
            if "/" in name or name in ("", ".", "..") or not any(fnmatch(name, p) for p in job.spec.outputs):
                continue
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.rest.download(ce_id, name))
            fetched.append(target)
        return fetched

    def logs(self, job: JobRecord) -> str:
        if tools := self.tools():
            return tools.logs(job)
        ce_id = self._job_id(job)
        parts = []
        for name in (desc.STDOUT, desc.STDERR):
            try:
                parts.append(self.rest.download(ce_id, name).decode(errors="replace"))
            except BackendError:
                continue
        return "".join(parts)

    def describe(self, jobs: Sequence[JobRecord]) -> str:
        """The description(s) ``submit`` would send (``--dry-run``), ADL or xRSL per settings."""
        if self.settings.description_format == "xrsl":
            return "\n".join(desc.xrsl(j, self.opts) for j in jobs)
        return desc.adl_bulk(list(jobs), self.opts)

    def check(self) -> Health:
        problem, warnings = health_problems(self.proxy, vo=self.settings.vo)
        if problem:
            return Health(reachable=False, detail=f"credential: {problem}", credential=problem)
        try:
            if tools := self.tools():
                health = tools.check()
                health.warnings.extend(warnings)
                health.credential = "; ".join(warnings) or "ok"
                return health
            version = self.rest.discover_version()
            self.rest.list_jobs()
        except CopsError as exc:
            return Health(reachable=False, detail=exc.message, warnings=warnings, credential="ok")
        detail = f"{self.rest.base} REST {version}"
        return Health(
            reachable=True, detail=detail, warnings=warnings, credential="; ".join(warnings) or "ok"
        )
