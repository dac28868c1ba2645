"""How every backend runs a job's payload: through the pilot wrapper, as an argv list.

The wrapper (``pilot/cops-pilot``) is one standard-library file that backends ship with
the job (Slurm job dir, ARC input file, DIRAC input sandbox, ...). Its command line is
the contract between the client and the worker node:

    python3 cops-pilot --image IMAGE [--image-root DIR] [--runtime a,b] [--workdir DIR]
        [--env K=V]... [--gpu] [--report FILE] -- COMMAND [ARG...]
"""

from __future__ import annotations

from pathlib import Path

from computeops_grid import worker
from computeops_grid.jobs.model import JobSpec

REPORT_NAME = "cops-report.json"
PILOT_FILE = worker.PILOT


# Run the wrapper as an imported module rather than as a script: Python then caches its
# bytecode in __pycache__ beside it instead of compiling ~2000 lines on every job (tens of
# ms), and -S skips `site` (the wrapper is stdlib only). sys.path[0] becomes the wrapper's
# own directory, never the job's working directory, so no job file can shadow a module.
# dont_write_bytecode=False: the cache is the point, even where PYTHONDONTWRITEBYTECODE is set.
MODULE_LAUNCH = (
    "import sys;sys.dont_write_bytecode=False;sys.path[0]=sys.argv.pop(1);"
    "import cops_pilot;sys.exit(cops_pilot.main(sys.argv[1:]))"
)


def launch_argv(python: str, pilot: str | Path, *, module: bool = False) -> list[str]:
    """How to start the wrapper: as a script (portable: any node, any file name) or,
    where its directory is ours (the local backend), as a bytecode-cached module."""
    if module and Path(pilot).name == PILOT_FILE:
        return [python, "-S", "-c", MODULE_LAUNCH, str(Path(pilot).parent)]
    return [python, str(pilot)]


def pilot_argv(
    spec: JobSpec,
    *,
    pilot: str | Path,
    python: str = "python3",
    image_root: str | Path | None = None,
    workdir: str | Path | None = None,
    report: str = REPORT_NAME,
    extra: list[str] | None = None,
    module: bool = False,
    stage: bool = True,
) -> list[str]:
    """The argv that runs ``spec``'s payload through the wrapper on a worker node; ``stage``:
    the wrapper moves the job's storage URLs (False where the CE's own stager does)."""
    argv = [*launch_argv(python, pilot, module=module), "--image", spec.image, "--report", report]
    if image_root is not None:
        argv += ["--image-root", str(image_root)]
    if workdir is not None:
        argv += ["--workdir", str(workdir)]
    if spec.runtimes:
        argv += ["--runtime", ",".join(spec.runtimes)]
    if spec.resources.gpus:
        argv.append("--gpu")
    for key, value in sorted(spec.environment.items()):
        argv += ["--env", f"{key}={value}"]
    if stage:
        argv += [f"--stage-in={item.name}={item.url}" for item in spec.stage_in]
        argv += [f"--stage-out={item.path}={item.to}" for item in spec.stage_out]
    argv += list(extra or [])
    argv += ["--", spec.command, *spec.arguments]
    return argv
