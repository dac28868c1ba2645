"""Fixtures of the resource tests: a real login node (sshd on 127.0.0.1) in front of the test Slurm."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services.slurm import SlurmCluster
from tests.services.sshd import SshServer, missing_sshd_tools, start_sshd


@pytest.fixture(scope="session")
def sshd(slurm_cluster: SlurmCluster) -> Iterator[SshServer]:
    """Debian's sshd on 127.0.0.1 (free port, throwaway host key, test user and client key),
    in front of the session's Slurm. Missing packages fail rather than skip: CI must run these."""
    if os.getuid() != 0:
        pytest.skip("the sshd fixture creates a test user and runs sshd as root")
    if missing := missing_sshd_tools():
        pytest.fail(f"{', '.join(missing)} missing: install the packages of etc/deps/apt-grid.txt")
    server = start_sshd()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def control_dir() -> Iterator[Path]:
    """A private, short directory for the shared connections' sockets; every connection a test
    left open is closed afterwards (``ssh -O exit``), so none outlives the test."""
    path = Path(tempfile.mkdtemp(prefix="cops-ssh-", dir="/tmp"))
    yield path
    for sock in path.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "cops-test"],
            capture_output=True, timeout=15, check=False,
        )  # fmt: skip
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ssh_settings(
    sshd: SshServer, slurm_cluster: SlurmCluster, grid_images: Path, control_dir: Path
) -> dict[str, Any]:
    """``resources.<name>:`` settings of the session's Slurm reached through ``sshd``."""
    return {
        "type": "slurm",
        "ssh": sshd.destination,
        "ssh_key": str(sshd.key),
        "known_hosts": str(sshd.known_hosts),
        "ssh_config": "/dev/null",  # the machine's ~/.ssh/config plays no part in the tests
        "ssh_control_dir": str(control_dir),
        "remote_jobs_dir": str(sshd.home / "jobs"),
        "slurm_conf": str(slurm_cluster.conf),
        "image_root": str(grid_images),  # world-readable: jobs run as the test user
    }
