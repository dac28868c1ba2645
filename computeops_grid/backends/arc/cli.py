"""The ARC client tools as the ARC backend's second transport (``transport: cli``).

``arcsub`` (which delegates the proxy and uploads the inputs itself), ``arcstat -l``,
``arckill``, ``arcclean``, ``arcget``, ``arccat``, ``arcinfo`` and ``arcsync``, run as
argv lists. Their job ids are the REST job URLs, so a job's native id is the same
whichever transport submitted it. The tools keep their own job list, one per cops-grid
home (``<home>/arc/jobs.dat``); a job it does not know (submitted over REST, or found
again by ``lookup``) is added with ``arcsync`` first.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from fnmatch import fnmatch
from pathlib import Path

from computeops_grid import worker
from computeops_grid.backends.arc import desc
from computeops_grid.backends.arc import states as arc_states
from computeops_grid.backends.arc.cli_output import (
    ArcInfo,
    parse_arcinfo,
    parse_arcstat,
    parse_arcsub,
    tool_error,
)
from computeops_grid.backends.base import Health, StatusInfo, SubmitResult
from computeops_grid.backends.common.cancel import not_found
from computeops_grid.backends.common.jobdir import input_sources
from computeops_grid.backends.common.payload import PILOT_FILE
from computeops_grid.backends.common.tools import ToolErrors, run_tool, tool_failure
from computeops_grid.errors import BackendError, BackendRejected, CredentialError, DeliveryUncertain
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState

log = logging.getLogger(__name__)
TOOLS = ("arcsub", "arcstat", "arckill", "arcclean", "arcget", "arccat", "arcinfo", "arcsync")
_UNKNOWN_JOB = ("not found in job list", "Job list file", "No jobs")
ERRORS = ToolErrors(
    family="arc",
    install_hint="install nordugrid-arc-client, or set `transport: rest` for this backend",
    unreachable=("Failed to establish connection", "Failed to connect", "Connection refused"),
    credential=("Failed configuration initialization", "proxy", "Proxy", "credential", "Certificate and key"),
    rejected_hint="is your proxy's VO allowed on this CE?",
    summary=lambda proc: tool_error(proc.stderr),
)


def tools_installed() -> bool:
    return all(shutil.which(t) for t in TOOLS)


class ArcCli:
    """One CE through the ``arc*`` tools, with the user's proxy and one job list."""

    def __init__(
        self,
        ce_url: str,
        proxy: Path,
        ca_dir: str,
        joblist: Path,
        *,
        opts: desc.DescOptions,
        pilot: Path,
        endpoint_type: str = "arcrest",
        timeout: float = 30.0,
        name: str = "arc",
    ) -> None:
        self.ce = ce_url
        self.proxy = proxy
        self.ca_dir = ca_dir
        self.joblist = joblist
        self.opts = opts
        self.pilot = pilot
        self.endpoint_type = endpoint_type
        self.timeout = timeout
        self.name = name

    # -- running the tools ------------------------------------------------------------

    def run(self, tool: str, *args: str, joblist: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one tool (argv list, never a shell); a missing tool or a hang is a clear error."""
        argv = [tool, "-t", str(int(self.timeout)), *(["-j", str(self.joblist)] if joblist else []), *args]
        env = {"X509_USER_PROXY": str(self.proxy), "X509_CERT_DIR": self.ca_dir}
        self.joblist.parent.mkdir(parents=True, exist_ok=True)
        log.debug("running %s", argv[:6])
        return run_tool(argv, ERRORS, timeout=self.timeout * 4 + 10, extra_env=env)

    def failure(self, tool: str, proc: subprocess.CompletedProcess[str]) -> BackendError | CredentialError:
        return tool_failure(tool, proc, ERRORS, what=f"against the CE {self.ce}")

    def _job_tool(
        self, tool: str, args: Sequence[str], ids: Sequence[str]
    ) -> subprocess.CompletedProcess[str]:
        """Run a per-job tool; jobs the job list does not know are added (``arcsync``) once."""
        proc = self.run(tool, *args, *ids)
        if any(m in proc.stderr for m in _UNKNOWN_JOB):
            self.sync()
            proc = self.run(tool, *args, *ids)
        return proc

    def sync(self) -> None:
        """Add this user's jobs on the CE to the job list (``arcsync``)."""
        proc = self.run("arcsync", "-f", "-C", self.ce)
        if proc.returncode != 0:
            raise self.failure("arcsync", proc)

    # -- submit -------------------------------------------------------------------------

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]:
        """One ``arcsub`` for all jobs; each job is one xRSL file naming its local inputs."""
        with tempfile.TemporaryDirectory(prefix="cops-arcsub-") as tmp:
            args = ["-C", self.ce, "-T", self.endpoint_type]
            for i, job in enumerate(jobs):
                sources = {
                    PILOT_FILE: str(self.pilot),
                    desc.LAUNCHER_FILE: str(worker.path(worker.DIRAC_LAUNCHER)),
                }
                sources.update({p.name: str(p) for p in input_sources(job)})
                path = Path(tmp) / f"{i}.xrsl"
                path.write_text(desc.xrsl(job, self.opts, sources=sources))
                args += ["-f", str(path)]
            proc = self.run("arcsub", *args)
        out = parse_arcsub(proc.stdout)
        if not out.ids and proc.returncode != 0:
            raise self.failure("arcsub", proc)  # nothing was accepted: refused, not sent, or unknown
        refused = set(out.not_submitted)
        if len(out.ids) + sum(desc.job_name(j) in refused for j in jobs) != len(jobs):
            raise DeliveryUncertain(
                f"arcsub reported {len(out.ids)} submitted job(s) for {len(jobs)} descriptions",
                backend=self.name,
                hint="`cops-grid sync` looks the jobs up on the CE",
            )
        ids = iter(out.ids)
        results = []
        for job in jobs:
            if desc.job_name(job) in refused:
                message = f"the CE {self.ce} did not accept the job: {tool_error(proc.stderr)}"
                results.append(SubmitResult(job_id=job.id, error=BackendRejected(message, backend=self.name)))
            else:
                results.append(SubmitResult(job_id=job.id, native_id=next(ids), state=JobState.QUEUED))
        return results

    # -- status, cancel, clean ------------------------------------------------------------

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        by_native = {j.native_id: j for j in jobs if j.native_id}
        if not by_native:
            return {}
        proc = self._job_tool("arcstat", ["-l"], list(by_native))
        if proc.returncode != 0 and not proc.stdout.strip():
            raise self.failure("arcstat", proc)
        result: dict[str, StatusInfo] = {}
        for native, info in parse_arcstat(proc.stdout).items():
            status = arc_states.to_status(info.native_state, info.exit_code, "; ".join(info.errors))
            if status is not None and native in by_native:
                result[by_native[native].id] = status
        return result

    def cancel(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """``arckill --keep``: it skips jobs that already ended (they stay as they ended) and the
        CE takes seconds to get to ``KILLED``, so ``status`` confirms every job of the answer."""
        answers = {j.id: not_found(j, self.name) for j in jobs if not j.native_id}
        ids = [j.native_id for j in jobs if j.native_id]
        if ids:
            proc = self._job_tool("arckill", ["--keep"], ids)
            if proc.returncode != 0:
                raise self.failure("arckill", proc)
        return answers

    def clean(self, jobs: Sequence[JobRecord]) -> None:
        ids = [j.native_id for j in jobs if j.native_id]
        if ids:
            self._job_tool("arcclean", [], ids)

    # -- files, health --------------------------------------------------------------------

    def fetch_outputs(self, job: JobRecord, dest: Path) -> list[Path]:
        """``arcget --keep`` into a temp dir, then only the declared outputs (plain files) to ``dest``."""
        if not job.native_id:
            return []
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".arcget-", dir=dest) as tmp:
            proc = self._job_tool("arcget", ["--keep", "-D", tmp], [job.native_id])
            if proc.returncode != 0:
                raise self.failure("arcget", proc)
            got = Path(tmp) / job.native_id.rstrip("/").rsplit("/", 1)[-1]
            fetched = []
            for path in sorted(got.iterdir()) if got.is_dir() else []:
                if path.is_symlink() or not path.is_file():
                    continue
                if any(fnmatch(path.name, p) for p in job.spec.outputs):
                    fetched.append(Path(shutil.copyfile(path, dest / path.name)))
        return fetched

    def logs(self, job: JobRecord) -> str:
        if not job.native_id:
            return ""
        parts = []
        for flag in ("-o", "-e"):
            proc = self._job_tool("arccat", [flag], [job.native_id])
            if proc.returncode == 0:
                parts.append(proc.stdout)
        return "".join(parts)

    def info(self) -> ArcInfo:
        proc = self.run("arcinfo", "-l", "-c", self.ce, joblist=False)
        if proc.returncode != 0:
            raise self.failure("arcinfo", proc)
        return parse_arcinfo(proc.stdout)

    def check(self) -> Health:
        try:
            info = self.info()
        except (BackendError, CredentialError) as exc:
            return Health(reachable=False, detail=exc.message)
        queues = ", ".join(info.queues) or "none"
        return Health(reachable=True, detail=f"{self.ce} via arc* tools: {info.lrms or '?'}, queues {queues}")
