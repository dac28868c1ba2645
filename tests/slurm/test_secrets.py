"""Credentials in the submitting shell stay there on Slurm too: ``sbatch`` copies the whole
environment into the job (and slurmctld's state) unless told otherwise, so the backend
exports only the allow-list (``backends/common/environment.py``).

Real Slurm, the real CLI in a subprocess, the real wrapper, a busybox payload running ``env``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, configure_backend
from tests.local.test_secrets import (
    DECLARED,
    leaks_in_text,
    leaks_in_tree,
    payload_env,
    set_markers,
    write_job,
)
from tests.services.slurm import SlurmCluster

pytestmark = [pytest.mark.service]


@pytest.fixture
def markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return set_markers(tmp_path, monkeypatch)


def _slurm_env_file(cluster: SlurmCluster, native_id: str) -> Path:
    """Where slurmctld keeps a queued or running batch job's environment."""
    number = int(native_id.split("_", maxsplit=1)[0])
    return cluster.root / "state" / f"hash.{number % 10}" / f"job.{number}" / "environment"


def test_no_credential_reaches_the_slurm_job_or_its_files(
    cli: Cli, cops_home: Path, tmp_path: Path, markers: dict[str, str], slurm_settings: dict[str, Any]
) -> None:
    configure_backend(cops_home, "slurm", slurm_settings)
    job = write_job(tmp_path / "env.yaml", environment={DECLARED[0]: DECLARED[1]})
    submitted = cli("submit", str(job), "--backend", "slurm", "--wait", timeout=240)
    assert submitted.code == 0, submitted.stderr
    env = payload_env(submitted.stdout)
    assert env.get(DECLARED[0]) == DECLARED[1], submitted.stdout
    leaks = leaks_in_text("submit output", submitted.stdout + submitted.stderr, markers)
    leaks += leaks_in_tree(cops_home, markers)
    assert not leaks, "credentials leaked:\n" + "\n".join(leaks)


def test_slurm_keeps_no_credential_in_its_own_state(
    cli: Cli,
    tmp_path: Path,
    markers: dict[str, str],
    slurm_settings: dict[str, Any],
    slurm_cluster: SlurmCluster,
) -> None:
    configure_backend(cli.home, "slurm", slurm_settings)
    job = write_job(tmp_path / "sleep.yaml", command="sleep", arguments=["60"])
    submitted = cli("submit", str(job), "--backend", "slurm", "--json")
    assert submitted.code == 0, submitted.stderr
    (row,) = submitted.json()  # type: ignore[misc]
    stored = _slurm_env_file(slurm_cluster, row["native_id"])
    try:
        deadline = time.monotonic() + 30
        while not stored.is_file():
            assert time.monotonic() < deadline, f"slurmctld never wrote {stored}"
            time.sleep(0.1)
        saved = stored.read_bytes()
        assert b"PATH=" in saved  # the allow-list did arrive
        leaks = [label for label, value in markers.items() if value.encode() in saved]
        assert not leaks, f"credentials in slurmctld's state {stored}: {leaks}"
    finally:
        slurm_cluster.run("scancel", row["native_id"])
