"""Job directories on a shared filesystem: stage inputs in, collect declared outputs out.

Used by batch backends whose worker nodes see the client's job directory (Slurm) and
by backends that upload a job's files from it (ARC). Outputs come back through the one
collection in :mod:`computeops_grid.backends.common.outputs`.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from computeops_grid import worker
from computeops_grid.backends.common.payload import PILOT_FILE
from computeops_grid.errors import JobFileError
from computeops_grid.jobs.record import JobRecord

log = logging.getLogger(__name__)


def job_workdir(job: JobRecord, jobs_dir: Path) -> Path:
    """The job's directory (``jobs_dir/<id>`` unless the store already set one); recorded on the job."""
    if job.workdir is None:
        job.workdir = jobs_dir / job.id
    return job.workdir


def input_sources(job: JobRecord) -> list[Path]:
    """The job's input files as paths on this machine (relative to the job file's directory)."""
    if not job.spec.inputs:
        return []
    base = Path(job.source).parent if job.source else Path.cwd()
    sources = []
    for item in job.spec.inputs:
        path = Path(item) if Path(item).is_absolute() else base / item
        if not path.is_file():
            raise JobFileError(
                f"input file {path} does not exist",
                path=job.source,
                field="inputs",
                hint="inputs are paths relative to the job file; fix the path or create the file",
            )
        sources.append(path)
    return sources


def shipped_beside(job: JobRecord) -> list[str]:
    """Worker-side files the job needs beside the wrapper: the mover when it names storage URLs."""
    return [worker.TRANSFER] if job.spec.stage_in or job.spec.stage_out else []


def link_or_copy(src: Path, dest: Path) -> None:
    """Hard-link ``src`` to ``dest`` (cheap for 1,000 jobs), copying across filesystems."""
    if dest.exists():
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def prepare(job: JobRecord, jobs_dir: Path, pilot: Path) -> Path:
    """Create the job directory with the pilot wrapper and the input files in it."""
    workdir = job_workdir(job, jobs_dir)
    workdir.mkdir(parents=True, exist_ok=True)
    link_or_copy(pilot, workdir / PILOT_FILE)
    for name in shipped_beside(job):
        link_or_copy(worker.path(name), workdir / name)
    for src in input_sources(job):
        link_or_copy(src, workdir / src.name)
    return workdir
