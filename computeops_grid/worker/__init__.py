"""Files that run on the worker node, shipped with jobs: found one way, as package data.

Everything here is standard-library Python 3.6+ and is never imported by the client as
part of the package (the client reads and ships the files): the pilot wrapper
``cops_pilot.py``, the site-validation probes (``probes/check_*.py`` and their
``probelib.py``) with their runner ``run_probes.py``, and the DIRAC launcher
``cops_dirac_launch.py``. The same files are in a wheel and in a source checkout
(``pilot/cops-pilot`` is a link to the wrapper here). Where the client needs the wrapper's
own code or tables (exit codes, image names), :func:`load_pilot` loads the file.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from computeops_grid.errors import ConfigError

PILOT = "cops_pilot.py"
PROBE_RUNNER = "run_probes.py"
PROBES = "probes"
DIRAC_LAUNCHER = "cops_dirac_launch.py"
TRANSFER = "cops_transfer.py"  # the wrapper's mover for storage URLs, shipped beside it when a job names any

_HERE = Path(__file__).resolve().parent


def folder() -> Path:
    """The directory holding every worker-side file (``run_probes.py`` and ``probes/`` too)."""
    return _HERE


def path(name: str) -> Path:
    """One worker-side file or folder by name (``PILOT``, ``DIRAC_LAUNCHER``, ...)."""
    found = _HERE / name
    if not found.exists():
        raise ConfigError(
            f"worker-side file {name} is missing from {_HERE}",
            hint="the installation is incomplete: reinstall cops-grid (pip install --force-reinstall)",
        )
    return found


def pilot() -> Path:
    """The pilot wrapper shipped with every job."""
    return path(PILOT)


def load_pilot() -> ModuleType:
    """The wrapper file imported as the module ``cops_pilot`` (once per process): the client
    reads the wrapper's tables (exit codes, image names) and runs its ``main`` from here."""
    found = pilot()
    module = sys.modules.get("cops_pilot")
    if module is not None and getattr(module, "__file__", None) == str(found):
        return module
    spec = importlib.util.spec_from_file_location("cops_pilot", found)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load the pilot wrapper {found}", hint="reinstall cops-grid")
    module = importlib.util.module_from_spec(spec)
    sys.modules["cops_pilot"] = module
    spec.loader.exec_module(module)
    return module
