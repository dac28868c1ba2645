"""How every backend runs a job's payload: through the pilot wrapper, as an argv list.

The wrapper (``pilot/cops-pilot``) is one standard-library file that backends ship with
the job (Slurm job dir, ARC input file, DIRAC input sandbox, ...). Its command line is
the contract between the client and the worker node:

    python3 cops-pilot --image IMAGE [--image-root DIR] [--runtime a,b] [--workdir DIR]
        [--env K=V]... [--gpu] [--report FILE] -- COMMAND [ARG...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from computeops_grid.jobs.model import JobSpec

REPORT_NAME = "cops-report.json"
PILOT_FILE = "cops_pilot.py"


def wrapper_path() -> Path:
    """The pilot wrapper file shipped with this installation."""
    candidates = [
        Path(__file__).resolve().parents[2] / "pilot" / PILOT_FILE,  # source tree / editable install
        Path(sys.prefix) / "share" / "cops-grid" / "pilot" / PILOT_FILE,  # wheel (data_files)
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"pilot wrapper not found in {', '.join(map(str, candidates))}")


def pilot_argv(
    spec: JobSpec,
    *,
    pilot: str | Path,
    python: str = "python3",
    image_root: str | Path | None = None,
    workdir: str | Path | None = None,
    report: str = REPORT_NAME,
    extra: list[str] | None = None,
) -> list[str]:
    """The argv that runs ``spec``'s payload through the wrapper on a worker node."""
    argv = [python, str(pilot), "--image", spec.image, "--report", report]
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
    argv += list(extra or [])
    argv += ["--", spec.command, *spec.arguments]
    return argv
