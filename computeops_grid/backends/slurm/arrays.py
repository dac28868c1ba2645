"""Sweeps as Slurm job arrays: split by the cluster's ``MaxArraySize``, one directory per array.

A bulk of jobs with the same resources becomes as few ``sbatch --array`` calls as the
cluster allows: Slurm refuses task ids of ``MaxArraySize`` or more (default 1001), so a
10,000-job sweep is 10 arrays. Each array's task ids are ``index - base`` (``base`` is 0
while every index fits, as for any bulk of up to ``MaxArraySize`` jobs); the array's job
name carries its base (``cops-<bulk_id>`` or ``cops-<bulk_id>+<base>``), which is how
:meth:`SlurmBackend.lookup` maps a task back to its job after a lost reply.

The client writes one directory per array (``.arrays/<bulk_id>-<base>``): the wrapper and
the inputs once, the per-task parameters in one file (``cops-tasks.sh``: the task's job
directory, its inputs and the wrapper's argv) and the script given to ``sbatch``. The task
makes its own job directory on the node, so client time grows with the number of arrays,
not of jobs; the job directory then holds what a single job's holds (``stdout``,
``stderr``, ``cops-native-id``, ``cops-exitcode``, the wrapper's report, the outputs).
What Slurm itself writes for a task (a cancellation notice, a failure before the job
directory exists) goes to ``<task id>.log`` in the array directory.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from computeops_grid.backends.common.payload import PILOT_FILE
from computeops_grid.backends.slurm.script import (
    EXIT_FILE,
    NAME_PREFIX,
    NATIVE_ID_FILE,
    STDERR,
    STDOUT,
    array_spec,
    sbatch_header,
)
from computeops_grid.jobs import exit_codes
from computeops_grid.jobs.record import JobRecord

DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's default (slurm.conf(5))
ARRAYS_DIR = ".arrays"
TASKS_FILE = "cops-tasks.sh"
SBATCH_FILE = "cops-sbatch.sh"
INPUTS_DIR = "inputs"
_MAX_ARRAY_RE = re.compile(r"^\s*MaxArraySize\s*=\s*(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Array:
    """One ``sbatch --array``: jobs of one bulk whose task ids are ``index - base``."""

    jobs: tuple[JobRecord, ...]
    base: int

    @property
    def bulk_id(self) -> str:
        return str(self.jobs[0].bulk_id)

    @property
    def name(self) -> str:
        return array_name(self.bulk_id, self.base)

    @property
    def dir_name(self) -> str:
        return f"{self.bulk_id}-{self.base}"

    def task_id(self, job: JobRecord) -> int:
        return job.index - self.base


def parse_max_array_size(text: str) -> int | None:
    """``MaxArraySize`` from ``scontrol show config`` output (``None`` when absent)."""
    match = _MAX_ARRAY_RE.search(text)
    return int(match.group(1)) if match else None


def array_name(bulk_id: str, base: int) -> str:
    return f"{NAME_PREFIX}{bulk_id}" + (f"+{base}" if base else "")


def parse_name(name: str) -> tuple[str, int] | None:
    """``(bulk_id, base)`` of an array's job name; ``None`` for a name that is not one."""
    if not name.startswith(NAME_PREFIX):
        return None
    bulk_id, sep, base = name[len(NAME_PREFIX) :].partition("+")
    if sep and not base.isdigit():
        return None
    return bulk_id, int(base) if sep else 0


def split(jobs: Sequence[JobRecord], max_size: int) -> list[Array]:
    """Arrays of at most ``max_size`` tasks whose task ids stay below ``max_size``."""
    ordered = sorted(jobs, key=lambda j: j.index)
    if ordered and ordered[-1].index < max_size:
        return [Array(tuple(ordered), 0)]  # task id = index, as for any bulk that fits
    chunks: list[list[JobRecord]] = []
    for job in ordered:
        if not chunks or job.index - chunks[-1][0].index >= max_size:
            chunks.append([])
        chunks[-1].append(job)
    return [Array(tuple(chunk), chunk[0].index) for chunk in chunks]


@dataclass(frozen=True)
class Staged:
    """The files of one array directory, relative to it: copies (``sources``) and texts."""

    sources: dict[str, Path]
    texts: dict[str, str]


def tasks_file(
    array: Array,
    workdirs: Sequence[PurePath],
    argvs: Sequence[list[str]],
    inputs: Sequence[list[tuple[str, str]]],
) -> str:
    """``cops-tasks.sh``: one ``case`` arm per task (its directory, its inputs, the wrapper's argv)."""
    arms = []
    for job, workdir, argv, files in zip(array.jobs, workdirs, argvs, inputs):
        steps = [f"_task {shlex.quote(str(workdir))}"]
        steps += [f"_in {shlex.quote(staged)} {shlex.quote(name)}" for staged, name in files]
        steps.append(f"set -- {shlex.join(argv)}")
        arms.append(f"{array.task_id(job)}) " + "; ".join(steps) + " ;;")
    unknown = exit_codes.code("job-index-unknown")
    return (
        'case "$SLURM_ARRAY_TASK_ID" in\n' + "\n".join(arms) + "\n"
        f'*) echo "cops-grid: unknown array index $SLURM_ARRAY_TASK_ID" >&2; exit {unknown} ;;\nesac\n'
    )


def sbatch_script(array: Array, array_dir: PurePath, options: Sequence[str], throttle: int | None) -> str:
    """The script given to ``sbatch``: directives, then the task's own directory made here."""
    spec = array_spec([array.task_id(j) for j in array.jobs]) + (f"%{throttle}" if throttle else "")
    directives = [
        f"--job-name={array.name}",
        f"--array={spec}",
        f"--chdir={array_dir}",
        f"--output={array_dir}/%a.log",
        *options,
    ]
    header = sbatch_header(directives)
    unusable = exit_codes.code("job-dir-unusable")
    return "\n".join(
        [
            "#!/bin/sh",
            header,
            f"A={shlex.quote(str(array_dir))}",
            f'_in() {{ ln -f "$A/$1" "./$2" 2>/dev/null || cp -p "$A/$1" "./$2" || exit {unusable}; }}',
            f'_task() {{ mkdir -p "$1" && cd "$1" || exit {unusable}; exec >{STDOUT} 2>{STDERR}; '
            f"_in {PILOT_FILE} {PILOT_FILE}; }}",
            f'. "$A/{TASKS_FILE}"',
            f'echo "${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}" > {NATIVE_ID_FILE}',
            '"$@"',
            "rc=$?",
            f'echo "$rc" > {EXIT_FILE}.tmp && mv -f {EXIT_FILE}.tmp {EXIT_FILE}',
            'exit "$rc"',
            "",
        ]
    )


def staged_inputs(sources: Sequence[Sequence[Path]]) -> tuple[dict[str, Path], list[list[tuple[str, str]]]]:
    """Each distinct input file once (``inputs/<n>/<name>``); per job, (staged path, name) pairs."""
    staged: dict[Path, str] = {}
    per_job: list[list[tuple[str, str]]] = []
    for files in sources:
        pairs = []
        for src in files:
            rel = staged.setdefault(src, f"{INPUTS_DIR}/{len(staged)}/{src.name}")
            pairs.append((rel, src.name))
        per_job.append(pairs)
    return {rel: src for src, rel in staged.items()}, per_job
