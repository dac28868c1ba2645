"""The legacy DIRAC backend (v8/v9 without DiracX): the ``dirac-wms-*`` commands via subprocess.

Same JDL as the DiracX backend, but the input sandbox is the list of local files (the
DIRAC client uploads them itself). Commands and the output parsed (DIRAC's documented
examples): ``dirac-wms-job-submit FILE`` -> ``JobID = 11`` (``JobID = [11, 12]`` for a
parametric JDL); ``dirac-wms-job-status ID...`` -> ``JobID=2 Status=Done; MinorStatus=...;``;
``dirac-wms-job-get-output -D DIR ID`` -> files in ``DIR/ID/``; ``dirac-wms-job-kill ID...``;
``dirac-wms-job-get-jdl ID`` -> a Python dict. ``JobGroup`` is ``cops-<bulk or job id>`` so
that ``lookup`` can find jobs after a crash (``dirac-wms-job-status -g GROUP``).
"""

from __future__ import annotations

import ast
import logging
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

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
from computeops_grid.backends.common.outputs import collect_outputs
from computeops_grid.backends.common.retry import one_by_one
from computeops_grid.backends.common.tools import ToolErrors, run_tool, tool_failure
from computeops_grid.backends.dirac import jdl
from computeops_grid.backends.dirac.states import native_state
from computeops_grid.errors import BackendError, DeliveryUncertain
from computeops_grid.jobs.record import JobRecord

log = logging.getLogger(__name__)
STATUS_LINE = re.compile(r"^JobID=(\d+)\s+(.*)$")
SUBMIT_LINE = re.compile(r"JobID\s*=\s*\[?([\d,\s]+)\]?")
HINT = "install and configure the DIRAC client (`dirac-proxy-init -g <group>`), or use --backend diracx"
ERRORS = ToolErrors(family="dirac", install_hint=HINT)


class DiracSettings(BackendSettings):
    python: str = Field(default="python3", description="interpreter of the wrapper on the worker node")
    image_root: str | None = Field(default=None, description="image repository on the worker nodes")
    site: list[str] = Field(default_factory=list, description="JDL Site")
    banned_sites: list[str] = Field(default_factory=list, description="JDL BannedSites")
    timeout: float = Field(default=300, gt=0, description="seconds allowed per dirac-wms-* command")


def parse_status(text: str) -> dict[str, dict[str, str]]:
    """``JobID=2 Status=Done; MinorStatus=Execution Complete; Site=X;`` lines -> {id: fields}."""
    found: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        match = STATUS_LINE.match(line.strip())
        if match:
            fields = (p.split("=", 1) for p in match.group(2).split(";") if "=" in p)
            found[match.group(1)] = {k.strip(): v.strip() for k, v in fields}
    return found


class DiracBackend:
    """Jobs through an installed legacy DIRAC client (``dirac-wms-*`` on PATH)."""

    name: ClassVar[str] = "dirac"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.BULK_SUBMIT, Capability.CANCEL, Capability.OUTPUTS, Capability.LOGS,
         Capability.GPU, Capability.CONTAINERS, Capability.DETACHED}
    )  # fmt: skip
    Settings: ClassVar[type[BackendSettings]] = DiracSettings

    def __init__(self, settings: DiracSettings, context: BackendContext) -> None:
        self.settings = settings
        self.context = context

    def run(self, *argv: str) -> str:
        proc = run_tool(argv, ERRORS, timeout=self.settings.timeout)
        if proc.returncode != 0:
            raise tool_failure(argv[0], proc, ERRORS)
        return proc.stdout

    def opts(self, job: JobRecord) -> jdl.JdlOptions:
        return jdl.JdlOptions(
            python=self.settings.python, image_root=self.settings.image_root, site=self.settings.site,
            banned_sites=self.settings.banned_sites, job_group=f"cops-{job.bulk_id or job.id}",
        )  # fmt: skip

    def job_jdl(self, job: JobRecord) -> str:
        base = Path(job.source).parent if job.source else Path.cwd()
        files = [str(self.context.pilot), str(worker.path(worker.DIRAC_LAUNCHER))]
        files += [str(Path(i) if Path(i).is_absolute() else base / i) for i in job.spec.inputs]
        return jdl.single_jdl(job, files, self.opts(job))

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]:
        """One ``dirac-wms-job-submit`` per job (see :func:`one_by_one` for partial failures)."""
        with tempfile.TemporaryDirectory(prefix="cops-dirac-") as tmp:

            def submit_one(job: JobRecord) -> SubmitResult:
                path = Path(tmp) / f"{job.id}.jdl"
                path.write_text(self.job_jdl(job))
                out = self.run("dirac-wms-job-submit", str(path))
                match = SUBMIT_LINE.search(out)
                if not match:  # submitted or not? `sync` decides
                    raise DeliveryUncertain(
                        f"unexpected dirac-wms-job-submit output: {out.strip()!r}", backend=self.name
                    )
                return SubmitResult(job.id, native_id=match.group(1).split(",")[0].strip())

            return one_by_one(jobs, submit_one)

    def lookup(self, jobs: Sequence[JobRecord]) -> dict[str, SubmitResult | None]:
        found: dict[str, SubmitResult | None] = {j.id: None for j in jobs}
        by_name = {jdl.job_name(j): j for j in jobs}
        for group in sorted({f"cops-{j.bulk_id or j.id}" for j in jobs}):
            for job_id, fields in parse_status(self.run("dirac-wms-job-status", "-g", group)).items():
                desc = ast.literal_eval(self.run("dirac-wms-job-get-jdl", job_id).strip())
                job = by_name.get(str(desc.get("JobName", "")))
                if job is not None and found[job.id] is None:
                    state = native_state(fields).state
                    found[job.id] = SubmitResult(job.id, native_id=job_id, state=state)
        return found

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        ids = {str(j.native_id): j.id for j in jobs if j.native_id}
        if not ids:
            return {}
        rows = parse_status(self.run("dirac-wms-job-status", *ids))
        return {ids[i]: native_state(f) for i, f in rows.items() if i in ids}

    def cancel(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """``dirac-wms-job-kill`` for the jobs still active (DIRAC refuses to kill a job that
        ended: those are answered as they ended); ``status`` confirms the ``Killed``."""
        before = self.status(jobs)
        answers, todo = split_ended(jobs, before)
        answers.update({j.id: not_found(j, self.name) for j in todo if j.id not in before})
        ids = [str(j.native_id) for j in todo if j.id in before]
        if ids:
            self.run("dirac-wms-job-kill", *ids)
        return answers

    def fetch_outputs(self, job: JobRecord, dest: Path) -> list[Path]:
        if not job.native_id:
            raise BackendError(f"job {job.id} was never accepted by DIRAC", backend=self.name)
        with tempfile.TemporaryDirectory(prefix="cops-dirac-out-") as tmp:
            self.run("dirac-wms-job-get-output", "-D", tmp, job.native_id)
            patterns = jdl.output_sandbox(job)
            return collect_outputs(Path(tmp) / job.native_id, patterns, dest)

    def logs(self, job: JobRecord) -> str:
        with tempfile.TemporaryDirectory(prefix="cops-dirac-logs-") as tmp:
            self.fetch_outputs(job, Path(tmp))
            parts = [Path(tmp) / jdl.STDOUT, Path(tmp) / jdl.STDERR]
            return "".join(p.read_text(errors="replace") for p in parts if p.is_file())

    def describe(self, jobs: Sequence[JobRecord]) -> str:
        return "".join(self.job_jdl(j) for j in jobs)

    def check(self) -> Health:
        missing = [c for c in ("dirac-wms-job-submit", "dirac-wms-job-status") if shutil.which(c) is None]
        if missing:
            return Health(reachable=False, detail=f"{', '.join(missing)} not on PATH; {HINT}")
        return Health(reachable=True, detail="DIRAC client commands found")
