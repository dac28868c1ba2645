"""Slurm backend: ``sbatch`` (one ``--array`` per bulk), ``squeue``/``sacct`` status, ``scancel``.

Job directories live on a filesystem the nodes share (``jobs_dir``). Every job's script
runs the payload through the pilot wrapper and leaves its exit code in the job directory,
so jobs are resolved even after Slurm forgot them (no accounting, ``MinJobAge``). The
cops-grid id is the native job name (``cops-<id>``; arrays ``cops-<bulk_id>`` + index),
which is how :meth:`lookup` finds jobs after a crash without submitting again.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

from computeops_grid.backends.base import (
    BackendContext,
    BackendSettings,
    Capability,
    Health,
    StatusInfo,
    SubmitResult,
)
from computeops_grid.backends.common.environment import exported_names
from computeops_grid.backends.common.jobdir import job_workdir, prepare
from computeops_grid.backends.common.outputs import collect_outputs
from computeops_grid.backends.common.retry import with_retries
from computeops_grid.backends.common.tools import ToolErrors, run_tool, tool_failure
from computeops_grid.backends.slurm import script
from computeops_grid.backends.slurm import status as st
from computeops_grid.errors import BackendError
from computeops_grid.jobs.record import JobRecord
from computeops_grid.jobs.state import JobState

log = logging.getLogger(__name__)

ERRORS = ToolErrors(
    family="slurm",
    install_hint="install the Slurm client commands (Debian: slurm-client) or set bin_dir",
    # the controller was not reached: nothing was submitted
    unreachable=("Unable to contact slurm controller", "Connection refused", "Transport endpoint"),
    # the request may or may not have arrived (Slurm itself cannot tell)
    uncertain=("Socket timed out", "temporarily unavailable", "Slurm temporarily unable"),
    unreachable_hint="check that slurmctld is running (`scontrol ping`); the job stays retryable",
    rejected_hint="fix the job's resources or the backend's partition/account/qos settings",
)
_GONE = ("Invalid job id", "already completing or completed")


class SlurmSettings(BackendSettings):
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gpu_flag: Literal["gres", "gpus"] = "gres"
    sbatch_options: list[str] = []
    slurm_conf: str | None = None  # SLURM_CONF for the client commands
    bin_dir: str | None = None  # where sbatch & co. live (default: PATH)
    jobs_dir: str | None = None  # shared directory for job dirs (default: cops-grid's)
    image_root: str | None = None  # image repository as the nodes see it
    python: str = "python3"  # interpreter for the wrapper on the nodes
    accounting: Literal["auto", "yes", "no"] = "auto"
    command_timeout: float = 60.0


class SlurmBackend:
    """A Slurm cluster reached through its client commands on this machine."""

    name: ClassVar[str] = "slurm"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.BULK_SUBMIT,
            Capability.ARRAYS,
            Capability.CANCEL,
            Capability.OUTPUTS,
            Capability.LOGS,
            Capability.GPU,
            Capability.CONTAINERS,
            Capability.DETACHED,
        }
    )
    Settings: ClassVar[type[BackendSettings]] = SlurmSettings

    def __init__(self, settings: SlurmSettings, context: BackendContext) -> None:
        self.settings = settings
        self.context = context
        self.jobs_dir = Path(settings.jobs_dir) if settings.jobs_dir else context.jobs_dir
        self.image_root = settings.image_root or str(context.image_root)
        self.directives = script.Directives(
            partition=settings.partition,
            account=settings.account,
            qos=settings.qos,
            gpu_flag=settings.gpu_flag,
            extra=tuple(settings.sbatch_options),
        )
        self._accounting: bool | None = {"yes": True, "no": False}.get(settings.accounting)

    # -- running the client commands ------------------------------------------------

    def _run(self, tool: str, args: list[str]) -> subprocess.CompletedProcess[str]:
        exe = str(Path(self.settings.bin_dir) / tool) if self.settings.bin_dir else tool
        extra = {"SLURM_CONF": self.settings.slurm_conf} if self.settings.slurm_conf else {}
        return run_tool([exe, *args], ERRORS, timeout=self.settings.command_timeout, extra_env=extra)

    def _checked(self, tool: str, args: list[str], *, idempotent: bool = True) -> str:
        def once() -> str:
            proc = self._run(tool, args)
            if proc.returncode != 0:
                raise tool_failure(tool, proc, ERRORS)
            return proc.stdout

        return with_retries(once, idempotent=idempotent, what=tool)

    # -- submit ---------------------------------------------------------------------

    def _groups(self, jobs: Sequence[JobRecord]) -> list[list[JobRecord]]:
        """Jobs of one bulk with identical resources become one array; the rest go alone."""
        groups: dict[tuple[str, tuple[str, ...]], list[JobRecord]] = {}
        singles: list[list[JobRecord]] = []
        for job in jobs:
            if job.bulk_id is None:
                singles.append([job])
                continue
            key = (job.bulk_id, tuple(script.sbatch_options(job, self.directives)))
            groups.setdefault(key, []).append(job)
        out = singles
        for group in groups.values():
            if len({j.index for j in group}) == len(group):
                out.append(group)
            else:
                out += [[j] for j in group]
        return out

    def _sbatch(self, script_path: Path) -> str:
        """Submit one script; returns the native job id (without the cluster name).

        ``--export`` names the allow-listed variables only: by default Slurm copies the whole
        submitting environment, tokens and keys included, into the job and its own state."""
        export = "--export=" + (",".join(exported_names(os.environ)) or "NIL")
        out = self._checked("sbatch", ["--parsable", export, str(script_path)], idempotent=False)
        return out.strip().split(";")[0]

    def _write_job(self, job: JobRecord) -> Path:
        workdir = prepare(job, self.jobs_dir, self.context.pilot)
        text = script.job_script(job, workdir, python=self.settings.python, image_root=self.image_root)
        (workdir / script.JOB_SCRIPT).write_text(text)
        return workdir

    def _links_dir(self, group: Sequence[JobRecord]) -> Path:
        return self.jobs_dir / ".arrays" / f"{group[0].bulk_id}-{group[0].index}"

    def _write_group(self, group: list[JobRecord]) -> Path:
        """Write every job's files; returns the script to give to ``sbatch``."""
        workdirs = [self._write_job(job) for job in group]
        if len(group) == 1 and group[0].bulk_id is None:
            path = workdirs[0] / "cops-sbatch.sh"
            path.write_text(script.single_script(group[0], workdirs[0], self.directives))
            return path
        links = self._links_dir(group)
        links.mkdir(parents=True, exist_ok=True)
        for job, workdir in zip(group, workdirs):
            link = links / str(job.index)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(workdir)
        path = links / "cops-sbatch.sh"
        path.write_text(script.array_script(group, workdirs, links, self.directives))
        return path

    def _submit_group(self, group: list[JobRecord]) -> list[SubmitResult]:
        path = self._write_group(group)
        try:
            native = self._sbatch(path)
        except BackendError as exc:  # every job of the group shares the answer (may have arrived too)
            return [SubmitResult(job_id=j.id, error=exc) for j in group]
        if len(group) == 1 and group[0].bulk_id is None:
            return [SubmitResult(job_id=group[0].id, native_id=native)]
        return [SubmitResult(job_id=j.id, native_id=f"{native}_{j.index}") for j in group]

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]:
        """One ``sbatch`` per single job and one ``sbatch --array`` per bulk, results in order.

        Every failure comes back as ``error`` on the job's result, with its delivery: refused,
        not sent (controller unreachable) or may have arrived (``sbatch`` timed out).
        """
        by_id: dict[str, SubmitResult] = {}
        for group in self._groups(jobs):
            for result in self._submit_group(group):
                by_id[result.job_id] = result
        return [by_id[job.id] for job in jobs]

    # -- status, lookup, cancel -----------------------------------------------------

    def _queue(self) -> list[st.NativeJob]:
        args = ["--noheader", "--array", "--states=all", f"--user={os.getuid()}"]
        return st.parse_squeue(self._checked("squeue", [*args, f"--format={st.SQUEUE_FORMAT}"]))

    def _sacct(self, native_ids: list[str]) -> dict[str, tuple[str, int | None]]:
        if self._accounting is False or not native_ids:
            return {}
        proc = self._run(
            "sacct", ["-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j", ",".join(native_ids)]
        )
        if proc.returncode != 0:
            if self._accounting is None:
                log.info("sacct unusable (%s): resolving finished jobs from their files", proc.stderr.strip())
                self._accounting = False
            return {}
        self._accounting = True
        return st.parse_sacct(proc.stdout)

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """Bulk status: one ``squeue`` call, then ``sacct`` or the job's files for the rest."""
        queue = {n.native_id: n for n in self._queue()}
        result: dict[str, StatusInfo] = {}
        missing: list[JobRecord] = []
        for job in jobs:
            native = queue.get(job.native_id or "")
            if native is None:
                missing.append(job)
                continue
            code = (
                st.exit_code_from_files(job_workdir(job, self.jobs_dir))
                if st.STATE_MAP.get(native.state, None)
                in (
                    JobState.COMPLETED,
                    JobState.FAILED,
                )
                else None
            )
            info = st.to_status(native.state, native.reason, code)
            if info is not None:
                result[job.id] = info
        accounted = self._sacct([j.native_id for j in missing if j.native_id])
        for job in missing:
            info = self._resolve_gone(job, accounted.get(job.native_id or ""))
            if info is not None:
                result[job.id] = info
        return result

    def _resolve_gone(self, job: JobRecord, accounted: tuple[str, int | None] | None) -> StatusInfo | None:
        code = st.exit_code_from_files(job_workdir(job, self.jobs_dir))
        if accounted is not None:
            return st.to_status(accounted[0], "", code if code is not None else accounted[1])
        info = st.from_files(job_workdir(job, self.jobs_dir))
        if info is None and job.native_id:
            info = StatusInfo(
                state=JobState.FAILED,
                message="Slurm no longer knows the job and it left no exit code (killed before it ran?)",
                native_state="UNKNOWN",
            )
        return info

    def lookup(self, jobs: Sequence[JobRecord]) -> dict[str, SubmitResult | None]:
        """Find jobs by the cops-grid id in their Slurm job name; never submits."""
        by_name: dict[tuple[str, int | None], st.NativeJob] = {}
        for queued in self._queue():
            by_name[(queued.name, queued.array_index)] = queued
        found: dict[str, SubmitResult | None] = {}
        for job in jobs:
            key: tuple[str, int | None] = (f"{script.NAME_PREFIX}{job.id}", None)
            if job.bulk_id is not None:
                key = (f"{script.NAME_PREFIX}{job.bulk_id}", job.index)
            hit = by_name.get(key)
            native_id = hit.native_id if hit else self._native_id_file(job)
            found[job.id] = SubmitResult(job_id=job.id, native_id=native_id) if native_id else None
        return found

    def _native_id_file(self, job: JobRecord) -> str | None:
        path = job_workdir(job, self.jobs_dir) / script.NATIVE_ID_FILE
        try:
            return path.read_text().strip() or None
        except OSError:
            return None

    def cancel(self, jobs: Sequence[JobRecord]) -> None:
        """``scancel`` every job in one call; jobs that already ended are not an error."""
        ids = [j.native_id for j in jobs if j.native_id]
        if not ids:
            return
        proc = self._run("scancel", ids)
        if proc.returncode != 0 and not all(
            any(g in line for g in _GONE) for line in proc.stderr.splitlines()
        ):
            raise tool_failure("scancel", proc, ERRORS)

    # -- files, dry run, health -----------------------------------------------------

    def fetch_outputs(self, job: JobRecord, dest: Path) -> list[Path]:
        return collect_outputs(job_workdir(job, self.jobs_dir), job.spec.outputs, dest)

    def logs(self, job: JobRecord) -> str:
        workdir = job_workdir(job, self.jobs_dir)
        parts = []
        for name in (script.STDOUT, script.STDERR):
            path = workdir / name
            if path.is_file():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)

    def describe(self, jobs: Sequence[JobRecord]) -> str:
        """The batch script(s) ``submit`` would give to sbatch (``--dry-run``); writes nothing."""
        texts = []
        for group in self._groups(jobs):
            workdirs = [j.workdir or self.jobs_dir / j.id for j in group]
            if len(group) == 1 and group[0].bulk_id is None:
                texts.append(script.single_script(group[0], workdirs[0], self.directives))
            else:
                texts.append(script.array_script(group, workdirs, self._links_dir(group), self.directives))
            texts.append(
                script.job_script(
                    group[0], workdirs[0], python=self.settings.python, image_root=self.image_root
                )
            )
        return "\n".join(texts)

    def check(self) -> Health:
        try:
            out = self._checked("sinfo", ["--noheader", "--format=%P %a %D %t"])
        except BackendError as exc:
            return Health(reachable=False, detail=exc.message)
        lines = [" ".join(line.split()) for line in out.splitlines() if line.strip()]
        return Health(reachable=True, detail="partitions: " + "; ".join(lines))
