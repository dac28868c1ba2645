"""Slurm backend: ``sbatch`` (one ``--array`` per bulk), ``squeue``/``sacct`` status, ``scancel``.

Job directories live on a filesystem the nodes share (``jobs_dir``). Every job's script
runs the payload through the pilot wrapper and leaves its exit code in the job directory,
so jobs are resolved even after Slurm forgot them (no accounting, ``MinJobAge``). The
cops-grid id is the native job name (``cops-<id>``; arrays ``cops-<bulk_id>`` + index),
which is how :meth:`lookup` finds jobs after a crash without submitting again.

With ``ssh: user@host[:port]`` the cluster is reached through its login node
(:mod:`computeops_grid.backends.common.ssh`: the OpenSSH client over one shared connection
per resource, host keys always checked): the same commands run there, job directories
are staged into ``remote_jobs_dir`` there as one tar stream per ``sbatch``, and status
files, logs and outputs come back the same way. Nothing is written to the local
``jobs_dir``; states and exit codes are read exactly as on the local path.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath, PurePosixPath
from typing import ClassVar, Literal

from pydantic import Field, PositiveInt, TypeAdapter, ValidationError, field_validator, model_validator

from computeops_grid import worker
from computeops_grid.backends.base import (
    BackendContext,
    BackendSettings,
    Capability,
    Health,
    StatusInfo,
    SubmitResult,
)
from computeops_grid.backends.common import ssh
from computeops_grid.backends.common.cancel import not_found
from computeops_grid.backends.common.environment import RUNNER_ENV, exported_names
from computeops_grid.backends.common.jobdir import (
    input_sources,
    job_workdir,
    link_or_copy,
    prepare,
    shipped_beside,
)
from computeops_grid.backends.common.outputs import collect_outputs
from computeops_grid.backends.common.payload import PILOT_FILE
from computeops_grid.backends.common.retry import with_retries
from computeops_grid.backends.common.tools import ToolErrors, run_tool, tool_failure
from computeops_grid.backends.slurm import arrays, script
from computeops_grid.backends.slurm import status as st
from computeops_grid.errors import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    CredentialError,
    JobFileError,
)
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
_THROTTLE: TypeAdapter[int] = TypeAdapter(PositiveInt)


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
    array_throttle: PositiveInt | None = Field(
        default=None,
        description="at most this many tasks of each array run at once (sbatch --array=...%N); "
        "a job's backend_options.array_throttle overrides it",
    )
    command_timeout: float = 60.0
    # a cluster reached through its login node (paths above are then paths there)
    ssh: str | None = None  # user@host[:port]
    remote_jobs_dir: str | None = None  # absolute, on the login node, seen by the compute nodes
    ssh_key: str | None = None  # private key file (0600); default: the agent and ~/.ssh keys
    known_hosts: str | None = None  # default: ~/.ssh/known_hosts (always checked)
    ssh_config: str | None = None  # an ssh_config file instead of ~/.ssh/config
    ssh_options: list[str] = []  # more ssh_config options, Name=value
    ssh_control_dir: str | None = None  # private dir of the shared connection's socket
    ssh_persist: int = 600  # seconds the shared connection outlives its last command
    ssh_connect_timeout: float = 15.0

    @field_validator("ssh")
    @classmethod
    def _destination(cls, value: str | None) -> str | None:
        if value is not None:
            ssh.Destination.parse(value)
        return value

    @field_validator("ssh_options")
    @classmethod
    def _options(cls, value: list[str]) -> list[str]:
        return ssh.check_options(value)

    @model_validator(mode="after")
    def _remote(self) -> SlurmSettings:
        if self.ssh is None:
            stray = [
                f for f in ("remote_jobs_dir", "ssh_key", "known_hosts", "ssh_config") if getattr(self, f)
            ]
            if stray or self.ssh_options:
                raise ValueError(f"{', '.join(stray or ['ssh_options'])} needs ssh: user@host (a login node)")
            return self
        if self.jobs_dir is not None:
            raise ValueError(
                "with ssh:, job directories are on the login node: set remote_jobs_dir, not jobs_dir"
            )
        if not self.remote_jobs_dir or not self.remote_jobs_dir.startswith("/"):
            raise ValueError(
                "with ssh:, remote_jobs_dir is required: an absolute path on the login node that "
                "the compute nodes see (a shared home or scratch)"
            )
        if not 0 < self.ssh_persist <= 86400:
            raise ValueError("ssh_persist: seconds, 1 to 86400")
        return self


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
        self._max_array_size: int | None = None  # the cluster's MaxArraySize, once asked
        # a cluster behind a login node: commands and job directories are there
        self.login: ssh.LoginNode | None = None
        self.cluster_dir: PurePosixPath | None = None
        if settings.ssh:
            self.login = ssh.LoginNode(
                ssh.Destination.parse(settings.ssh),
                family=self.name,
                key=settings.ssh_key,
                known_hosts=settings.known_hosts,
                config=settings.ssh_config,
                options=settings.ssh_options,
                control_dir=settings.ssh_control_dir,
                persist=settings.ssh_persist,
                connect_timeout=settings.ssh_connect_timeout,
            )
            self.cluster_dir = PurePosixPath(str(settings.remote_jobs_dir))

    # -- running the client commands ------------------------------------------------

    def preflight(self, jobs: Sequence[JobRecord]) -> None:
        """Refuse before anything is stored when this machine's Slurm client configuration
        named by ``slurm_conf`` is missing: sbatch would spend a minute to say only that."""
        conf = self.settings.slurm_conf
        if self.login is None and conf and not Path(conf).is_file():
            raise ConfigError(
                f"slurm: slurm_conf {conf} is not a file on this machine, so sbatch cannot read "
                "the cluster's configuration; nothing was submitted",
                hint="fix slurm_conf in the resource's settings (the path of the cluster's "
                "slurm.conf here), or remove it to use the default",
            )
        for job in jobs:  # a bad array_throttle is the job file's fault
            self._throttle(job)

    def _run(self, tool: str, args: list[str]) -> subprocess.CompletedProcess[str]:
        exe = str(PurePosixPath(self.settings.bin_dir) / tool) if self.settings.bin_dir else tool
        extra = {"SLURM_CONF": self.settings.slurm_conf} if self.settings.slurm_conf else {}
        if self.login is not None:  # on the login node (its exit status 255 raises)
            return self.login.run([exe, *args], timeout=self.settings.command_timeout, env=extra)
        return run_tool([exe, *args], ERRORS, timeout=self.settings.command_timeout, extra_env=extra)

    def _checked(self, tool: str, args: list[str], *, idempotent: bool = True) -> str:
        def once() -> str:
            proc = self._run(tool, args)
            if proc.returncode != 0:
                raise tool_failure(tool, proc, ERRORS)
            return proc.stdout

        return with_retries(once, idempotent=idempotent, what=tool)

    # -- submit ---------------------------------------------------------------------

    def _throttle(self, job: JobRecord) -> int | None:
        """How many tasks of each array may run at once (``--array=...%N``): the job's
        ``backend_options.array_throttle``, else the resource's ``array_throttle``."""
        value = job.spec.backend_options.get("array_throttle")
        if value is None:
            return self.settings.array_throttle
        try:
            return _THROTTLE.validate_python(value)
        except ValidationError:
            raise JobFileError(
                f"expected a whole number of tasks >= 1, got {value!r}",
                path=job.source,
                field="backend_options.array_throttle",
                hint="at most this many tasks of each Slurm array run at once (sbatch --array=...%N)",
            ) from None

    def _groups(self, jobs: Sequence[JobRecord]) -> list[list[JobRecord]]:
        """Jobs of one bulk with identical resources go together; the rest go alone."""
        groups: dict[tuple[str, tuple[str, ...], int | None], list[JobRecord]] = {}
        singles: list[list[JobRecord]] = []
        for job in jobs:
            if job.bulk_id is None:
                singles.append([job])
                continue
            key = (job.bulk_id, tuple(script.sbatch_options(job, self.directives)), self._throttle(job))
            groups.setdefault(key, []).append(job)
        out = singles
        for group in groups.values():
            if len({j.index for j in group}) == len(group):
                out.append(group)
            else:
                out += [[j] for j in group]
        return out

    def _units(self, jobs: Sequence[JobRecord], *, size: int | None = None) -> list[JobRecord | arrays.Array]:
        """What ``sbatch`` is called for: single jobs, and bulks split into arrays that fit
        the cluster's ``MaxArraySize`` (each bulk job alone where arrays are disabled)."""
        units: list[JobRecord | arrays.Array] = []
        for group in self._groups(jobs):
            if len(group) == 1 and group[0].bulk_id is None:
                units.append(group[0])
            elif (size := size if size is not None else self.max_array_size()) > 0:
                units += arrays.split(group, size)
            else:
                units += group
        return units

    def max_array_size(self) -> int:
        """The cluster's ``MaxArraySize`` (``scontrol show config``), asked once per resource."""
        if self._max_array_size is None:
            size = arrays.parse_max_array_size(self._checked("scontrol", ["show", "config"]))
            if size is None:
                log.warning("scontrol show config names no MaxArraySize: using Slurm's default")
                size = arrays.DEFAULT_MAX_ARRAY_SIZE
            self._max_array_size = size
        return self._max_array_size

    def _sbatch(self, script_path: PurePath) -> str:
        """Submit one script; returns the native job id (without the cluster name).

        ``--export`` names the allow-listed variables only: by default Slurm copies the whole
        submitting environment, tokens and keys included, into the job and its own state.
        On a login node the names are the allow-list's own (its environment is not ours)."""
        names = sorted(RUNNER_ENV) if self.login is not None else exported_names(os.environ)
        export = "--export=" + (",".join(names) or "NIL")
        out = self._checked("sbatch", ["--parsable", export, str(script_path)], idempotent=False)
        return out.strip().split(";")[0]

    def _write_job(self, job: JobRecord) -> Path:
        workdir = prepare(job, self.jobs_dir, self.context.pilot)
        text = script.job_script(job, workdir, python=self.settings.python, image_root=self.image_root)
        (workdir / script.JOB_SCRIPT).write_text(text)
        return workdir

    def _root(self) -> PurePath:
        """Where job directories are, as the nodes see them."""
        return self.cluster_dir if self.cluster_dir is not None else self.jobs_dir

    def _array_files(self, array: arrays.Array) -> tuple[PurePath, arrays.Staged]:
        """The array's directory and its files: wrapper and inputs once, the tasks, the script."""
        root = self._root()
        array_dir = root / arrays.ARRAYS_DIR / array.dir_name
        if self.cluster_dir is None:
            workdirs: list[PurePath] = [job_workdir(j, self.jobs_dir) for j in array.jobs]
        else:
            workdirs = [root / j.id for j in array.jobs]
        argvs = [
            script.wrapper_argv(j, w, python=self.settings.python, image_root=self.image_root)
            for j, w in zip(array.jobs, workdirs)
        ]
        sources, inputs = arrays.staged_inputs([input_sources(j) for j in array.jobs])
        options = script.sbatch_options(array.jobs[0], self.directives)
        texts = {
            arrays.TASKS_FILE: arrays.tasks_file(array, workdirs, argvs, inputs),
            arrays.SBATCH_FILE: arrays.sbatch_script(
                array, array_dir, options, self._throttle(array.jobs[0])
            ),
        }
        movers = {n: worker.path(n) for j in array.jobs for n in shipped_beside(j)}  # storage URLs
        return array_dir, arrays.Staged({PILOT_FILE: self.context.pilot, **movers, **sources}, texts)

    def _write_unit(self, unit: JobRecord | arrays.Array) -> PurePath:
        """Write a single job's directory or an array's; returns the script to give to ``sbatch``."""
        if isinstance(unit, JobRecord):
            if self.login is not None:
                return self._stage_remote(unit)
            workdir = self._write_job(unit)
            path = workdir / "cops-sbatch.sh"
            path.write_text(script.single_script(unit, workdir, self.directives))
            return path
        array_dir, staged = self._array_files(unit)
        if self.login is not None:
            self._put(lambda stage: stage.array(array_dir.relative_to(self._root()), staged))
        else:
            _write_array(Path(array_dir), staged)
        return array_dir / arrays.SBATCH_FILE

    def _stage_remote(self, job: JobRecord) -> PurePosixPath:
        """Send a single job's directory to the login node; returns its ``sbatch`` script there."""
        assert self.cluster_dir is not None
        workdir = self.cluster_dir / job.id

        def members(stage: _Stage) -> None:
            stage.directory(job.id)
            stage.file(self.context.pilot, f"{job.id}/{PILOT_FILE}")
            for name in shipped_beside(job):
                stage.file(worker.path(name), f"{job.id}/{name}")
            for src in input_sources(job):
                stage.file(src, f"{job.id}/{src.name}")
            text = script.job_script(job, workdir, python=self.settings.python, image_root=self.image_root)
            stage.text(f"{job.id}/{script.JOB_SCRIPT}", text)
            stage.text(f"{job.id}/cops-sbatch.sh", script.single_script(job, workdir, self.directives))

        self._put(members)
        return workdir / "cops-sbatch.sh"

    def _put(self, members: Callable[[_Stage], None]) -> None:
        """Stage files into ``remote_jobs_dir`` on the login node as one tar stream (the
        wrapper and an input shared by many jobs travel once)."""
        assert self.login is not None
        assert self.cluster_dir is not None
        login, root = self.login, self.cluster_dir
        with tempfile.TemporaryFile() as buf:
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
                members(_Stage(tar))

            def put() -> None:
                buf.seek(0)
                login.put_tree(buf, root, timeout=self.settings.command_timeout)

            try:
                with_retries(put, idempotent=True, what="staging")  # unpacking again is harmless
            except BackendError as exc:  # whatever happened to the files, sbatch never ran
                raise BackendUnavailable(
                    f"staging failed, nothing submitted: {exc.message}", hint=exc.hint
                ) from None

    def _submit_unit(self, unit: JobRecord | arrays.Array) -> list[SubmitResult]:
        jobs = [unit] if isinstance(unit, JobRecord) else list(unit.jobs)
        try:
            path = self._write_unit(unit)  # staging on a login node may fail: nothing submitted
            native = self._sbatch(path)
        except CredentialError as exc:  # the connection to the login node was refused: not sent
            error = BackendUnavailable(exc.message, hint=exc.hint)
            return [SubmitResult(job_id=j.id, error=error) for j in jobs]
        except BackendError as exc:  # every job of the unit shares the answer (may have arrived too)
            if exc.uncertain:
                log.warning("%s; run `cops-grid sync`", exc.message)
            return [SubmitResult(job_id=j.id, error=exc) for j in jobs]
        if isinstance(unit, JobRecord):
            return [SubmitResult(job_id=unit.id, native_id=native)]
        return [SubmitResult(job_id=j.id, native_id=f"{native}_{unit.task_id(j)}") for j in jobs]

    def submit(self, jobs: Sequence[JobRecord]) -> list[SubmitResult]:
        """One ``sbatch`` per single job and per array (a bulk is as few arrays as
        ``MaxArraySize`` allows), results in order.

        Every failure comes back as ``error`` on the job's result, with its delivery: refused,
        not sent (controller unreachable) or may have arrived (``sbatch`` timed out).
        """
        if self.login is not None and jobs:  # a refused host key or key is raised before anything is sent
            login = self.login
            with_retries(lambda: login.connect(self.settings.command_timeout), idempotent=True, what="ssh")
        by_id: dict[str, SubmitResult] = {}
        for unit in self._units(jobs):
            for result in self._submit_unit(unit):
                by_id[result.job_id] = result
        return [by_id[job.id] for job in jobs]

    # -- status, lookup, cancel -----------------------------------------------------

    def _queue(self) -> list[st.NativeJob]:
        user = "--me" if self.login is not None else f"--user={os.getuid()}"  # the login node's account
        args = ["--noheader", "--array", "--states=all", user]
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

    def _job_files(self, jobs: Sequence[JobRecord], names: Sequence[str]) -> dict[str, dict[str, str]]:
        """The files ``names`` that exist in each job's directory, by job id then name: read
        here, or from the login node in one round trip."""
        found: dict[str, dict[str, str]] = {job.id: {} for job in jobs}
        if self.login is None or self.cluster_dir is None:
            for job in jobs:
                workdir = job_workdir(job, self.jobs_dir)
                for name in names:
                    with contextlib.suppress(OSError):
                        found[job.id][name] = (workdir / name).read_text(errors="replace")
            return found
        login, root = self.login, self.cluster_dir
        wanted = [f"{job.id}/{name}" for job in jobs for name in names]

        def read() -> dict[str, bytes]:
            return login.read_files(root, wanted, timeout=self.settings.command_timeout)

        for path, data in (
            with_retries(read, idempotent=True, what="reading job files") if jobs else {}
        ).items():
            job_id, _, name = path.partition("/")
            if job_id in found:
                found[job_id][name] = data.decode(errors="replace")
        return found

    def _exit_codes(self, jobs: Sequence[JobRecord]) -> dict[str, int | None]:
        files = self._job_files(jobs, st.EXIT_CODE_FILES)
        return {job_id: st.exit_code_from_texts(texts) for job_id, texts in files.items()}

    def status(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """Bulk status: one ``squeue`` call, then ``sacct`` or the job's files for the rest
        (the files of every job that needs them read in one go)."""
        queue = {n.native_id: n for n in self._queue()}
        listed = {job.id: queue[job.native_id] for job in jobs if job.native_id and job.native_id in queue}
        missing = [job for job in jobs if job.id not in listed]
        ended = [job for job in jobs if job.id in listed and _ended(listed[job.id])]
        codes = self._exit_codes([*ended, *missing])
        result: dict[str, StatusInfo] = {}
        for job in jobs:
            native = listed.get(job.id)
            if native is None:
                continue
            info = st.to_status(native.state, native.reason, codes.get(job.id))
            if info is not None:
                result[job.id] = info
        accounted = self._sacct([j.native_id for j in missing if j.native_id])
        for job in missing:
            info = self._resolve_gone(job, accounted.get(job.native_id or ""), codes.get(job.id))
            if info is not None:
                result[job.id] = info
        return result

    def _resolve_gone(
        self, job: JobRecord, accounted: tuple[str, int | None] | None, code: int | None
    ) -> StatusInfo | None:
        if accounted is not None:
            return st.to_status(accounted[0], "", code if code is not None else accounted[1])
        info = st.from_exit_code(code)
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
            task = queued.array_index
            parsed = arrays.parse_name(queued.name) if task is not None else None
            if parsed is not None and task is not None:  # an array's task: its job's index
                by_name[(f"{script.NAME_PREFIX}{parsed[0]}", parsed[1] + task)] = queued
            else:
                by_name[(queued.name, task)] = queued
        hits: dict[str, st.NativeJob | None] = {}
        for job in jobs:
            single = by_name.get((f"{script.NAME_PREFIX}{job.id}", None))  # also a bulk job sent alone
            if job.bulk_id is not None:
                single = by_name.get((f"{script.NAME_PREFIX}{job.bulk_id}", job.index)) or single
            hits[job.id] = single
        # a job Slurm forgot left its id in its directory when it started
        files = self._job_files([j for j in jobs if hits[j.id] is None], [script.NATIVE_ID_FILE])
        found: dict[str, SubmitResult | None] = {}
        for job in jobs:
            hit = hits[job.id]
            native_id = hit.native_id if hit else files[job.id].get(script.NATIVE_ID_FILE, "").strip() or None
            found[job.id] = SubmitResult(job_id=job.id, native_id=native_id) if native_id else None
        return found

    def cancel(self, jobs: Sequence[JobRecord]) -> dict[str, StatusInfo]:
        """``scancel`` every job in one call; jobs that already ended are not an error.

        Slurm keeps what happened (``CANCELLED`` for a job it stopped, the real end of one
        that had finished) in ``squeue``/``sacct`` and the job's files, so the answer leaves
        the jobs out and ``status`` confirms them.
        """
        answers = {j.id: not_found(j, self.name) for j in jobs if not j.native_id}
        ids = [j.native_id for j in jobs if j.native_id]
        if not ids:
            return answers
        proc = self._run("scancel", ids)
        if proc.returncode != 0 and not all(
            any(g in line for g in _GONE) for line in proc.stderr.splitlines()
        ):
            raise tool_failure("scancel", proc, ERRORS)
        return answers

    # -- files, dry run, health -----------------------------------------------------

    def fetch_outputs(self, job: JobRecord, dest: Path) -> list[Path]:
        if self.login is None or self.cluster_dir is None:
            return collect_outputs(job_workdir(job, self.jobs_dir), job.spec.outputs, dest)
        login, root = self.login, self.cluster_dir
        # the job directory comes back without the wrapper; the one output collection picks
        with tempfile.TemporaryDirectory(prefix="cops-fetch-") as tmp:

            def fetch() -> Path:
                return login.fetch_tree(
                    root, job.id, Path(tmp), timeout=self.settings.command_timeout,
                    exclude=[f"{job.id}/{PILOT_FILE}", f"{job.id}/__pycache__"],
                )  # fmt: skip

            workdir = with_retries(fetch, idempotent=True, what="fetching outputs")
            return collect_outputs(workdir, job.spec.outputs, dest) if workdir.is_dir() else []

    def logs(self, job: JobRecord) -> str:
        files = self._job_files([job], [script.STDOUT, script.STDERR])[job.id]
        return "".join(files.get(name, "") for name in (script.STDOUT, script.STDERR)) + self._task_log(job)

    def _task_log(self, job: JobRecord) -> str:
        """What Slurm wrote for an array task outside its job directory (``<task id>.log``)."""
        _, sep, task = (job.native_id or "").partition("_")
        if job.bulk_id is None or not sep or not task.isdigit():
            return ""
        rel = f"{arrays.ARRAYS_DIR}/{job.bulk_id}-{job.index - int(task)}/{task}.log"
        if self.login is None or self.cluster_dir is None:
            with contextlib.suppress(OSError):
                return (self.jobs_dir / rel).read_text(errors="replace")
            return ""
        login, root = self.login, self.cluster_dir
        found = with_retries(
            lambda: login.read_files(root, [rel], timeout=self.settings.command_timeout),
            idempotent=True,
            what="reading job files",
        )
        return found.get(rel, b"").decode(errors="replace")

    def describe(self, jobs: Sequence[JobRecord]) -> str:
        """The batch script(s) ``submit`` would give to sbatch (``--dry-run``); writes nothing."""
        texts = []
        try:
            size = self.max_array_size() if any(j.bulk_id for j in jobs) else 0
        except BackendError as exc:  # a dry run works without the cluster
            size = arrays.DEFAULT_MAX_ARRAY_SIZE
            texts.append(f"# MaxArraySize {size} assumed (Slurm's default): {exc.message}")
        for unit in self._units(jobs, size=size):
            if isinstance(unit, JobRecord):
                workdir = self._root() / unit.id if self.cluster_dir is not None else unit.workdir
                workdir = workdir or self.jobs_dir / unit.id
                texts.append(script.single_script(unit, workdir, self.directives))
                texts.append(
                    script.job_script(unit, workdir, python=self.settings.python, image_root=self.image_root)
                )
                continue
            array_dir, staged = self._array_files(unit)
            texts += [f"# {array_dir / name}\n{text}" for name, text in sorted(staged.texts.items())]
        return "\n".join(texts)

    def check(self) -> Health:
        try:
            out = self._checked("sinfo", ["--noheader", "--format=%P %a %D %t"])
        except BackendError as exc:
            return Health(reachable=False, detail=exc.message)
        lines = [" ".join(line.split()) for line in out.splitlines() if line.strip()]
        if self.login is None:
            return Health(reachable=True, detail="partitions: " + "; ".join(lines))
        # the login node took our key (a refused one raises CredentialError: the listing shows it)
        detail = f"via {self.login.destination}: partitions: " + "; ".join(lines)
        return Health(reachable=True, detail=detail, credential="ok")


class _Stage:
    """Members of the tar stream that stages job directories on a login node."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.sent: dict[Path, str] = {}  # a file already in the stream: later copies are links to it

    def _info(self, name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, int(time.time())
        return info

    def directory(self, name: str) -> None:
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, 0o755))

    def file(self, src: Path, name: str) -> None:
        first = self.sent.get(src)
        if first is not None:
            info = self._info(name, tarfile.LNKTYPE, 0o644)
            info.linkname = first
            self.tar.addfile(info)
            return
        with src.open("rb") as data:
            info = self._info(name, tarfile.REGTYPE, os.fstat(data.fileno()).st_mode & 0o755)
            info.size = os.fstat(data.fileno()).st_size
            self.tar.addfile(info, data)
        self.sent[src] = name

    def text(self, name: str, text: str) -> None:
        data = text.encode()
        info = self._info(name, tarfile.REGTYPE, 0o644)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))

    def array(self, array_dir: PurePath, staged: arrays.Staged) -> None:
        """An array's directory (``.arrays/<name>``) with its files."""
        made: set[str] = set()
        for rel in [*staged.sources, *staged.texts]:
            parents = PurePosixPath(array_dir, rel).parents
            for parent in reversed(parents[:-1]):
                if str(parent) not in made:
                    made.add(str(parent))
                    self.directory(str(parent))
        for rel, src in staged.sources.items():
            self.file(src, f"{array_dir}/{rel}")
        for rel, text in staged.texts.items():
            self.text(f"{array_dir}/{rel}", text)


def _write_array(array_dir: Path, staged: arrays.Staged) -> None:
    """An array's directory here: the wrapper and inputs linked in, the texts written."""
    for rel, src in staged.sources.items():
        dest = array_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(src, dest)
    for rel, text in staged.texts.items():
        (array_dir / rel).write_text(text)


def _ended(native: st.NativeJob) -> bool:
    return st.STATE_MAP.get(native.state) in (JobState.COMPLETED, JobState.FAILED)
