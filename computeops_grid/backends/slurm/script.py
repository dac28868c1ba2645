"""The batch scripts the Slurm backend writes for a single job (arrays: :mod:`.arrays`).

A single job's directory holds ``cops-job.sh``: it runs the payload through the pilot
wrapper (argv quoted with :func:`shlex.quote`) and leaves the exit code in
``cops-exitcode``, so a job that has left ``squeue`` can still be resolved. An array's
tasks leave the same files in their own directories.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from computeops_grid.backends.common.payload import PILOT_FILE, REPORT_NAME, pilot_argv
from computeops_grid.jobs import exit_codes
from computeops_grid.jobs.record import JobRecord

JOB_SCRIPT = "cops-job.sh"
EXIT_FILE = "cops-exitcode"
NATIVE_ID_FILE = "cops-native-id"
STDOUT = "stdout"
STDERR = "stderr"
NAME_PREFIX = "cops-"


@dataclass(frozen=True)
class Directives:
    """Options from the backend settings that end up as ``#SBATCH`` lines."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gpu_flag: str = "gres"  # "gres" -> --gres=gpu:N, "gpus" -> --gpus=N
    extra: tuple[str, ...] = ()


def _walltime(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes // 1440}-{minutes % 1440 // 60:02d}:{minutes % 60:02d}:00"


def sbatch_options(job: JobRecord, opts: Directives) -> list[str]:
    """The resource options of one job (identical for every element of a parametric job)."""
    res = job.spec.resources
    lines = [
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={res.cores}",
        f"--mem={max(1, math.ceil(res.memory / 2**20))}M",
        f"--time={_walltime(res.walltime)}",
    ]
    if res.gpus:
        lines.append(f"--gres=gpu:{res.gpus}" if opts.gpu_flag == "gres" else f"--gpus={res.gpus}")
    backend_opts = job.spec.backend_options
    for key in ("partition", "account", "qos"):
        value = backend_opts.get(key) or getattr(opts, key)
        if value:
            lines.append(f"--{key}={value}")
    lines += [str(x) for x in backend_opts.get("sbatch", [])]
    lines += list(opts.extra)
    return lines


def wrapper_argv(job: JobRecord, workdir: PurePath, *, python: str, image_root: str | None) -> list[str]:
    """The argv that runs the job's payload through the wrapper in its job directory."""
    return pilot_argv(
        job.spec,
        pilot=f"./{PILOT_FILE}",
        python=python,
        image_root=image_root,
        workdir=str(workdir),
        report=REPORT_NAME,
    )


def job_script(job: JobRecord, workdir: PurePath, *, python: str, image_root: str | None) -> str:
    """``cops-job.sh`` of one job: run the wrapper in the job dir, keep the exit code."""
    argv = wrapper_argv(job, workdir, python=python, image_root=image_root)
    return "\n".join(
        [
            "#!/bin/sh",
            f"# cops-grid job {job.id} ({job.spec.name})",
            f"cd {shlex.quote(str(workdir))} || exit {exit_codes.code('job-dir-unusable')}",
            'if [ -n "$SLURM_ARRAY_JOB_ID" ]; then echo "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; '
            f'else echo "$SLURM_JOB_ID"; fi > {NATIVE_ID_FILE}',
            shlex.join(argv),
            "rc=$?",
            f'echo "$rc" > {EXIT_FILE}.tmp && mv -f {EXIT_FILE}.tmp {EXIT_FILE}',
            'exit "$rc"',
            "",
        ]
    )


def sbatch_header(directives: Sequence[str]) -> str:
    """The ``#SBATCH`` lines of a job script, each directive quoted as one word."""
    return "\n".join(f"#SBATCH {shlex.quote(d)}" for d in directives)


def single_script(job: JobRecord, workdir: PurePath, opts: Directives) -> str:
    """The script given to ``sbatch`` for one job: directives, then ``cops-job.sh``."""
    directives = [
        f"--job-name={NAME_PREFIX}{job.id}",
        f"--chdir={workdir}",
        f"--output={workdir / STDOUT}",
        f"--error={workdir / STDERR}",
        *sbatch_options(job, opts),
    ]
    return f"#!/bin/sh\n{sbatch_header(directives)}\nexec /bin/sh {shlex.quote(str(workdir / JOB_SCRIPT))}\n"


def array_spec(indices: Sequence[int]) -> str:
    """``0-99`` for a contiguous run, else a comma list of ranges (``1-3,7,9-10``)."""
    ordered = sorted(indices)
    parts: list[str] = []
    start = prev = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == prev + 1:
            prev = value
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if value is not None:
            start = prev = value
    return ",".join(parts)
