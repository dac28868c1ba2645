"""The local backend: each job runs detached on this machine, through the pilot wrapper.

A job is *accepted* when its prepared directory is renamed to ``jobs/<id>`` (atomic);
a detached runner (``local_runner.py``) then runs it, at most ``max_parallel`` at once.
``lookup`` finds a job by that directory and restarts a runner that never started, so a
crash anywhere in ``submit`` leads to exactly one run.

The runner and the wrapper get an allow-listed environment (``runner_env``), never the
client's whole one: credentials in the submitting shell (tokens, proxies, cloud keys) stay
there. A job that needs a variable declares it in its ``environment:``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from computeops_grid.backends.base import (
    BackendContext,
    BackendSettings,
    Capability,
    Health,
    StatusInfo,
    SubmitResult,
)
from computeops_grid.backends.common.cancel import not_found, stopped
from computeops_grid.backends.common.environment import runner_env
from computeops_grid.backends.common.outputs import collect_outputs
from computeops_grid.backends.common.payload import REPORT_NAME, pilot_argv
from computeops_grid.backends.local import runner as local_runner
from computeops_grid.errors import BackendError, ToolMissing
from computeops_grid.images import default as default_image
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState

log = logging.getLogger(__name__)
WRAPPER_CODES = range(240, 250)

SPAWN_ENV = ("PYTHONPATH", "PYTHONHOME")  # the runner imports this package as the CLI does


class LocalSettings(BackendSettings):
    max_parallel: int = Field(default=os.cpu_count() or 1, ge=1, description="payloads running at once")
    python: str = Field(default=sys.executable, description="interpreter that runs the pilot wrapper")


class LocalBackend:
    """Runs jobs on this machine, detached from the CLI, in ``<home>/jobs/<id>/``."""

    name: ClassVar[str] = "local"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.BULK_SUBMIT, Capability.CANCEL, Capability.OUTPUTS, Capability.LOGS,
         Capability.CONTAINERS, Capability.DETACHED}
    )  # fmt: skip
    Settings: ClassVar[type[BackendSettings]] = LocalSettings

    def __init__(self, settings: LocalSettings, context: BackendContext) -> None:
        self.settings = settings
        self.ctx = context
        self.root = context.jobs_dir / "local"

    def _dir(self, job: JobRecord) -> Path:
        return self.root / job.id

    # -- submission -------------------------------------------------------------
    def preflight(self, jobs: Sequence[JobRecord]) -> None:
        """Before anything is stored: the first job that names the embedded image
        (docker://busybox:latest) builds it in the local image repository."""
        default_image.ensure_for_jobs((job.spec.image for job in jobs), self.ctx.image_root)

    def argv(self, job: JobRecord) -> list[str]:
        return pilot_argv(
            job.spec,
            pilot=self.ctx.pilot,
            python=self.settings.python,
            image_root=self.ctx.image_root,
            workdir=self._dir(job) / "work",
            module=True,
        )

    def _prepare(self, job: JobRecord) -> Path:
        tmp = self.root / f".{job.id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        (tmp / "work").mkdir(parents=True)
        base = Path(job.source).parent if job.source else Path.cwd()
        for item in job.spec.inputs:
            src = (base / item).resolve()
            if not src.exists():
                shutil.rmtree(tmp, ignore_errors=True)
                raise BackendError(f"input file {src} does not exist", backend=self.name)
            dest = tmp / "work" / src.name
            if src.is_dir():
                shutil.copytree(src, dest, symlinks=True)
            else:
                shutil.copy2(src, dest)
        spec = {
            "argv": self.argv(job),
            "env": runner_env(os.environ),
            "slots_dir": str(self.root / ".slots"),
            "slots": self.settings.max_parallel,
        }
        # job.json holds the argv with the job's declared variables: owner-only
        fd = os.open(tmp / "job.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(spec, handle)
        return tmp

    def _spawn(self, jobdir: Path) -> None:
        """Start the job's runner fully detached: ``setsid --fork`` returns at once and the
        runner, in its own session, is re-parented to init (no zombie, survives the CLI).
        It gets the filtered environment too: a long-lived process keeps no credentials."""
        env = runner_env(os.environ) | {k: os.environ[k] for k in SPAWN_ENV if k in os.environ}
        subprocess.run(
            [_setsid(), "--fork", self.settings.python, "-m", local_runner.__name__, str(jobdir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            cwd="/",
            env=env,
            check=True,
        )

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]:
        _setsid()  # before any job is accepted: without it no runner could start
        results = []
        for job in jobs:
            final = self._dir(job)
            if final.exists():  # accepted by an earlier, interrupted submit
                results.append(SubmitResult(job.id, str(final)))
                continue
            try:
                tmp = self._prepare(job)
            except BackendError as exc:
                results.append(SubmitResult(job.id, error=exc))
                continue
            os.rename(tmp, final)  # the moment the job is accepted
            self._spawn(final)
            results.append(SubmitResult(job.id, str(final)))
        return results

    def lookup(self, jobs: Sequence[JobRecord]) -> dict[str, SubmitResult | None]:
        found: dict[str, SubmitResult | None] = {}
        for job in jobs:
            jobdir = self._dir(job)
            if not jobdir.is_dir():
                found[job.id] = None
                continue
            if not (jobdir / "started").exists() and not local_runner.lock_held(jobdir / "runner.lock"):
                log.info("job %s was accepted but its runner never started: starting it", job.id)
                self._spawn(jobdir)
            found[job.id] = SubmitResult(job.id, str(jobdir))
        return found

    # -- following --------------------------------------------------------------
    def _one_status(self, jobdir: Path) -> StatusInfo:
        if (jobdir / "cancelled").exists():
            return StatusInfo(JobState.CANCELLED, message="cancelled by the user")
        code_file = jobdir / "exit_code"
        if code_file.exists():
            code = int(code_file.read_text().strip())
            if code == 0:
                return StatusInfo(JobState.COMPLETED, exit_code=0)
            return StatusInfo(JobState.FAILED, exit_code=code, message=self._failure(jobdir, code))
        if local_runner.lock_held(jobdir / "runner.lock"):
            return StatusInfo(JobState.RUNNING if (jobdir / "started").exists() else JobState.QUEUED)
        if (jobdir / "started").exists():
            return StatusInfo(JobState.FAILED, message="the local runner died before the payload ended")
        return StatusInfo(JobState.QUEUED, message="waiting for a runner (`cops-grid sync` restarts it)")

    def _failure(self, jobdir: Path, code: int) -> str:
        if code in WRAPPER_CODES:
            lines = (jobdir / "stderr").read_text(errors="replace").strip().splitlines()
            wrapper = [ln for ln in lines if ln.startswith("cops-pilot:")]
            return (wrapper or lines or [f"pilot wrapper error {code}"])[-1]
        return f"payload exited with {code}"

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        return {job.id: self._one_status(self._dir(job)) for job in jobs if self._dir(job).is_dir()}

    def cancel(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """Stop each job's runner and payload (its process group); a job that already ended
        (or was cancelled before) is left alone and answered with its status."""
        answers: dict[str, StatusInfo] = {}
        for job in jobs:
            jobdir = self._dir(job)
            if not jobdir.is_dir():
                answers[job.id] = not_found(job, self.name)
            elif (jobdir / "exit_code").exists() or (jobdir / "cancelled").exists():
                answers[job.id] = self._one_status(jobdir)
            elif self._stop(jobdir):
                answers[job.id] = stopped()
        return answers

    def _stop(self, jobdir: Path) -> bool:
        """Mark the job cancelled (a runner that has not started the payload never will),
        then kill the runner's process group; True once no runner holds the job any more."""
        local_runner.write_atomic(jobdir / "cancelled", f"{time.time():.6f}")
        pid_file = jobdir / "runner.pid"
        if pid_file.exists() and local_runner.lock_held(jobdir / "runner.lock"):
            _kill_group(int(pid_file.read_text()))
        for _ in range(40):  # the lock goes with the runner's last process
            if not local_runner.lock_held(jobdir / "runner.lock"):
                return True
            time.sleep(0.05)
        return False

    def fetch_outputs(self, job: JobRecord, dest: Path) -> list[Path]:
        jobdir = self._dir(job)
        if not jobdir.is_dir():
            raise BackendError(f"the work directory of job {job.id} is gone", backend=self.name)
        patterns = [*job.spec.outputs, REPORT_NAME]
        fetched = collect_outputs(jobdir / "work", patterns, dest)
        for stream in ("stdout", "stderr"):
            if (jobdir / stream).exists():
                shutil.copy2(jobdir / stream, dest / stream)
                fetched.append(dest / stream)
        return fetched

    def logs(self, job: JobRecord) -> str:
        jobdir = self._dir(job)
        parts = []
        for stream in ("stdout", "stderr"):
            path = jobdir / stream
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def describe(self, jobs: Sequence[JobRecord]) -> str:
        return "\n".join(f"# {job.id} {job.name}\n{shlex.join(self.argv(job))}" for job in jobs) + "\n"

    def check(self) -> Health:
        if not self.ctx.pilot.is_file():
            return Health(False, f"pilot wrapper missing at {self.ctx.pilot}")
        warnings = []
        if not self.ctx.image_root.is_dir():
            warnings.append(
                f"no local image repository at {self.ctx.image_root} yet (the first job naming "
                f"{default_image.NAME} builds it there)"
            )
        detail = f"{self.settings.max_parallel} job(s) at once in {self.root}"
        return Health(True, detail, warnings)


def _setsid() -> str:
    """``setsid`` (util-linux), which starts each runner detached; missing: nothing is accepted."""
    path = shutil.which("setsid")
    if path is None:
        raise ToolMissing(
            "`setsid` is not installed here: jobs cannot be started detached",
            backend="local",
            hint="install util-linux (it provides setsid), then `cops-grid sync`",
        )
    return path


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        time.sleep(0.05)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
