"""The real Apptainer (Debian sid) and HTCondor (Debian trixie) for tests, from their Debian roots.

``scripts/debian-roots.sh`` builds each root once per machine (cached under
/var/cache/cops-grid/roots, rebuilt when absent or when its recipe changed) and installs the
``apptainer``/``singularity`` launchers (``scripts/apptainer-launcher.py``). The fixtures call
it; the first session on a fresh machine pays the build (about a minute per root).
See ../shared/notes/apptainer-htcondor-from-debian.md for how the recipes were found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "debian-roots.sh"
BUILD_TIMEOUT = 900.0


def build(what: str) -> Path:
    """The path ``scripts/debian-roots.sh what`` prints: a root, or the launchers' directory."""
    if os.geteuid() != 0:
        pytest.skip("the Debian roots are built with debootstrap, as root")
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is missing: install the packages of etc/deps/apt-debian-roots.txt")
    proc = subprocess.run(
        ["bash", str(SCRIPT), what], capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/debian-roots.sh {what} failed:\n{proc.stderr[-3000:]}")
    if proc.stderr.strip():
        print(proc.stderr.strip())  # "built ... in N s": the build time, in the test log
    return Path(proc.stdout.strip().splitlines()[-1])
