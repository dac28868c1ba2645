"""The DiracX backend: JDL jobs on a DIRAC/DiracX installation, payload through the wrapper.

Submission: one reproducible input sandbox (wrapper + job file + inputs) per distinct
file set, uploaded once (content-addressed); JDLs sent in batches of the server's
per-call limit; a parametric group becomes one DIRAC parametric JDL where DIRAC can
express it (see :mod:`jdl`) and a plain bulk otherwise. ``JobName`` embeds the cops-grid
id, so ``lookup`` finds jobs after a crash by searching names.

No matcher exists in a bare DiracX: jobs wait until a pilot runs them
(``cops-grid diracx run-jobs``, :mod:`computeops_grid.backends.dirac.agent`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from computeops_grid import worker
from computeops_grid.backends.base import (
    BackendContext,
    BackendSettings,
    Capability,
    Health,
    StatusInfo,
    SubmitResult,
)
from computeops_grid.backends.common.cancel import not_found, split_ended
from computeops_grid.backends.common.payload import PILOT_FILE
from computeops_grid.backends.common.sandbox import build_archive
from computeops_grid.backends.dirac import jdl
from computeops_grid.backends.dirac.diracx_client import (
    MAX_PER_CALL,
    DiracXClient,
    check_credentials,
    default_credentials_path,
)
from computeops_grid.backends.dirac.states import native_state
from computeops_grid.errors import (
    BackendError,
    BackendRejected,
    ConfigError,
    CopsError,
    Delivery,
    DeliveryUncertain,
    JobFileError,
)
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState

log = logging.getLogger(__name__)

SEARCH_COLUMNS = ("JobID", "JobName", "Status", "MinorStatus", "ApplicationStatus")


class DiracXSettings(BackendSettings):
    url: str | None = Field(default=None, description="DiracX server URL (default: $DIRACX_URL)")
    credentials: Path | None = Field(
        default=None, description="token file (default: $DIRACX_CREDENTIALS_PATH or dirac login's cache)"
    )
    batch_size: int = Field(default=MAX_PER_CALL, ge=1, le=MAX_PER_CALL, description="JDLs per submit call")
    parametric: bool = Field(default=True, description="send parametric groups as one parametric JDL")
    python: str = Field(default="python3", description="interpreter of the wrapper on the worker node")
    image_root: str | None = Field(default=None, description="image repository on the worker nodes")
    site: list[str] = Field(default_factory=list, description="JDL Site")
    banned_sites: list[str] = Field(default_factory=list, description="JDL BannedSites")
    platform: str | None = Field(default=None, description="JDL Platform")
    priority: int | None = Field(default=None, ge=0, le=10, description="JDL Priority")
    job_group: str | None = Field(default=None, description="JDL JobGroup")
    tags: list[str] = Field(default_factory=list, description="extra JDL Tags")


class DiracXBackend:
    """Jobs on a DiracX server; payloads run through the wrapper shipped in the input sandbox."""

    name: ClassVar[str] = "diracx"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.BULK_SUBMIT, Capability.ARRAYS, Capability.CANCEL, Capability.OUTPUTS,
         Capability.LOGS, Capability.GPU, Capability.CONTAINERS, Capability.DETACHED}
    )  # fmt: skip
    Settings: ClassVar[type[BackendSettings]] = DiracXSettings

    def __init__(self, settings: DiracXSettings, context: BackendContext) -> None:
        self.settings = settings
        self.context = context
        self.opts = jdl.JdlOptions(
            python=settings.python, image_root=settings.image_root, site=settings.site,
            banned_sites=settings.banned_sites, platform=settings.platform, priority=settings.priority,
            job_group=settings.job_group, tags=settings.tags,
        )  # fmt: skip
        self._client: DiracXClient | None = None
        self._pfns: dict[tuple[tuple[str, Path, int, int], ...], str] = {}

    # -- connection -------------------------------------------------------------
    @property
    def url(self) -> str:
        url = self.settings.url or os.environ.get("DIRACX_URL")
        if not url:
            raise ConfigError(
                "no DiracX server configured",
                hint="set backends.diracx.url in the cops-grid config, or DIRACX_URL",
            )
        return url

    @property
    def credentials(self) -> Path:
        return self.settings.credentials or default_credentials_path()

    @property
    def client(self) -> DiracXClient:
        if self._client is None:
            check_credentials(self.credentials)
            self._client = DiracXClient(self.url, self.credentials)
        return self._client

    def preflight(self, jobs: Sequence[JobRecord]) -> None:
        """Refuse before anything is stored: no server, an expired token, a JDL DIRAC cannot carry."""
        _ = self.url
        check_credentials(self.credentials)
        for job in jobs:
            jdl.single_jdl(job, ["SB:preflight"], self.opts)

    # -- submission --------------------------------------------------------------
    def sandbox_files(self, job: JobRecord) -> list[tuple[str, Path]]:
        files = [(PILOT_FILE, self.context.pilot), (jdl.LAUNCHER_FILE, worker.path(worker.DIRAC_LAUNCHER))]
        if job.source and Path(job.source).is_file():
            files.append(("cops-job" + Path(job.source).suffix, Path(job.source)))
        base = Path(job.source).parent if job.source else Path.cwd()
        for item in job.spec.inputs:
            path = Path(item) if Path(item).is_absolute() else base / item
            if not path.is_file():
                raise JobFileError(f"input file {path} does not exist", path=job.source, field="inputs")
            files.append((path.name, path))
        names = [n for n, _ in files]
        if len(set(names)) != len(names):
            raise JobFileError("two input files have the same name", path=job.source, field="inputs")
        return files

    def sandbox_pfn(self, files: list[tuple[str, Path]]) -> str:
        """The input sandbox of ``files``, built and uploaded once per content for this backend."""
        key = tuple((name, path, path.stat().st_mtime_ns, path.stat().st_size) for name, path in files)
        if key not in self._pfns:
            self._pfns[key] = self.client.upload(build_archive(files))
        return self._pfns[key]

    def _plan(self, jobs: Sequence[JobRecord]) -> list[tuple[list[JobRecord], list[str]]]:
        """Submission calls: ``(jobs, [jdl])`` for a parametric group or up to batch_size singles."""
        singles: list[tuple[JobRecord, str]] = []
        calls: list[tuple[list[JobRecord], list[str]]] = []
        groups: dict[tuple[str, str], list[JobRecord]] = {}
        for job in jobs:
            job_pfn = self.sandbox_pfn(self.sandbox_files(job))
            if job.bulk_id and self.settings.parametric:
                groups.setdefault((job.bulk_id, job_pfn), []).append(job)
            else:
                singles.append((job, jdl.single_jdl(job, [job_pfn], self.opts)))
        for (_, group_pfn), members in groups.items():
            text = None
            if len(members) <= self.settings.batch_size:
                text = jdl.parametric_jdl(members, [group_pfn], self.opts)
            if text is not None:
                calls.append((members, [text]))
            else:
                singles += [(j, jdl.single_jdl(j, [group_pfn], self.opts)) for j in members]
        size = self.settings.batch_size
        for start in range(0, len(singles), size):
            batch = singles[start : start + size]
            calls.append(([j for j, _ in batch], [t for _, t in batch]))
        return calls

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]:
        results: dict[str, SubmitResult] = {}
        for members, texts in self._plan(jobs):
            for res in self._submit_call(members, texts):
                results[res.job_id] = res
        return [results[j.id] for j in jobs]

    def _submit_call(self, members: list[JobRecord], texts: list[str]) -> list[SubmitResult]:
        """One submit call. When the server refuses a batch, the jobs are retried one by one
        (after checking that none was created) so that each refusal names its own JDL."""
        try:
            ids = self.client.submit(texts)
        except BackendError as exc:
            if exc.delivery is not Delivery.REJECTED:  # not sent, or `sync` must look them up
                return [SubmitResult(j.id, error=exc) for j in members]
            if len(texts) == 1:
                err = BackendRejected(jdl.diagnose(texts[0], exc.message), hint=exc.hint)
                return [SubmitResult(j.id, error=err) for j in members]
            found = self.lookup(members)
            done = [r for r in found.values() if r is not None]
            todo = [(j, t) for j, t in zip(members, texts) if found[j.id] is None]
            return done + [res for j, t in todo for res in self._submit_call([j], [t])]
        if len(texts) == 1 and len(members) > 1:
            try:
                ids = self._confirm_parametric(members)
            except BackendError as exc:  # the jobs exist (Submitting): only `sync` may settle them
                unsure = DeliveryUncertain(
                    f"parametric jobs submitted but not confirmed: {exc.message}",
                    backend=self.name,
                    hint="`cops-grid sync` finds and confirms them",
                )
                return [SubmitResult(j.id, error=unsure) for j in members]
        return [SubmitResult(j.id, native_id=str(n), state=JobState.QUEUED) for j, n in zip(members, ids)]

    def _confirm_parametric(self, members: list[JobRecord]) -> list[int]:
        """Parametric jobs wait in ``Submitting`` until their owner confirms them (DiracX 0.7.0)."""
        found = {r["JobName"]: int(r["JobID"]) for r in self._by_names(members)}
        ids = [found[jdl.job_name(j)] for j in members if jdl.job_name(j) in found]
        if len(ids) != len(members):
            raise DeliveryUncertain(f"parametric submission created {len(ids)} of {len(members)} jobs")
        self.client.set_status({i: [{"Status": "Received", "MinorStatus": "Job accepted"}] for i in ids})
        return ids

    # -- queries -----------------------------------------------------------------
    def _by_names(self, jobs: Sequence[JobRecord]) -> list[dict[str, Any]]:
        names = [jdl.job_name(j) for j in jobs]
        cond = [{"parameter": "JobName", "operator": "in", "values": names}]
        return self.client.search(cond, SEARCH_COLUMNS)

    def lookup(self, jobs: Sequence[JobRecord]) -> dict[str, SubmitResult | None]:
        """Find jobs by ``JobName``. Parametric jobs found still ``Submitting`` (the reply to
        their submit was lost before the client confirmed them) are confirmed now: DiracX
        would never run them."""
        found: dict[str, SubmitResult | None] = {j.id: None for j in jobs}
        by_name = {jdl.job_name(j): j for j in jobs}
        unconfirmed: list[int] = []
        for row in self._by_names(jobs):
            job = by_name.get(str(row["JobName"]))
            if job is not None and found[job.id] is None:  # the oldest wins if a name repeats
                found[job.id] = SubmitResult(
                    job.id, native_id=str(row["JobID"]), state=native_state(row).state
                )
                if row.get("Status") == "Submitting":
                    unconfirmed.append(int(row["JobID"]))
        if unconfirmed:
            log.info("confirming %d parametric job(s) found unconfirmed", len(unconfirmed))
            self.client.set_status(
                {i: [{"Status": "Received", "MinorStatus": "Job accepted"}] for i in unconfirmed}
            )
        return found

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        ids = {str(j.native_id): j.id for j in jobs if j.native_id}
        if not ids:
            return {}
        cond = [{"parameter": "JobID", "operator": "in", "values": sorted(ids, key=int)}]
        rows = self.client.search(cond, SEARCH_COLUMNS)
        return {ids[str(r["JobID"])]: native_state(r) for r in rows if str(r["JobID"]) in ids}

    def cancel(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """DiracX has no kill route: a kill is the status ``Killed``, which the server also
        turns into a ``Kill`` command for the job's pilot (its next heartbeat gets it).

        The server ignores a kill it does not allow without saying so, so the jobs are read
        before (one that already ended is answered as it ended and not touched) and after:
        ``Killed`` is the confirmation; any other state means the kill was not taken.
        """
        before = self.status(jobs)
        answers, todo = split_ended(jobs, before)
        answers.update({j.id: not_found(j, self.name) for j in todo if j.id not in before})
        todo = [j for j in todo if j.id in before]
        ids = [int(str(j.native_id)) for j in todo]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self.client.set_status(
                {i: [{"Status": "Killed", "MinorStatus": "Killed by cops-grid"}] for i in chunk}
            )
        for job_id, info in self.status(todo).items():
            if not info.state.final:
                info.message = f"DiracX did not take the kill: the job is still {info.native_state}"
            answers[job_id] = info
        return answers

    # -- results -----------------------------------------------------------------
    def fetch_outputs(self, job: JobRecord, dest: Path) -> list[Path]:
        if not job.native_id:
            raise BackendError(f"job {job.id} was never accepted by DiracX", backend=self.name)
        pfns = self.client.job_sandboxes(int(job.native_id))
        if not pfns:
            raise BackendError(
                f"job {job.id} (DIRAC {job.native_id}) has no output sandbox yet",
                backend=self.name,
                hint="outputs appear when the job is Done or Failed; check `cops-grid status`",
            )
        files: list[Path] = []
        for pfn in pfns:
            files += self.client.download(pfn, dest)
        return files

    def logs(self, job: JobRecord) -> str:
        with tempfile.TemporaryDirectory(prefix="cops-diracx-") as tmp:
            try:
                self.fetch_outputs(job, Path(tmp))
            except BackendError as exc:
                return exc.message + "\n"
            parts = [(Path(tmp) / n) for n in (jdl.STDOUT, jdl.STDERR)]
            return "".join(p.read_text(errors="replace") for p in parts if p.is_file())

    def describe(self, jobs: Sequence[JobRecord]) -> str:
        """The JDLs ``submit`` would send (a parametric JDL per expressible group)."""
        sandbox = ["SB:<input sandbox: uploaded at submission>"]
        groups: dict[str | None, list[JobRecord]] = {}
        for job in jobs:
            groups.setdefault(job.bulk_id if self.settings.parametric else None, []).append(job)
        texts = []
        for bulk, members in groups.items():
            text = jdl.parametric_jdl(members, sandbox, self.opts) if bulk else None
            texts += [text] if text else [jdl.single_jdl(j, sandbox, self.opts) for j in members]
        return "".join(texts)

    def check(self) -> Health:
        try:
            creds = check_credentials(self.credentials)
            _ = self.client.api
        except CopsError as exc:
            return Health(reachable=False, detail=exc.message)
        return Health(reachable=True, detail=f"{self.url} as {creds.user} ({creds.group}, VO {creds.vo})")
