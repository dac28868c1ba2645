"""End to end through the real CLI on the session's real Slurm: submit --wait, get, cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, Cli, configure_backend
from tests.e2e.helpers import rows, sleep_job, submitted_id, wait_gone, wait_present, wait_state
from tests.services.slurm import SlurmCluster

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture
def slurm_cli(cli: Cli, cops_home: Path, slurm_settings: dict[str, Any]) -> Cli:
    configure_backend(cops_home, "slurm", slurm_settings)
    return cli


def test_submit_wait_prints_the_payload_output_and_get_fetches_outputs(
    slurm_cli: Cli, tmp_path: Path
) -> None:
    res = slurm_cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "slurm", "--wait", timeout=180)
    assert res.code == 0, res.stderr
    assert "Hello from Linux in a container, job hello" in res.stdout
    (job,) = rows(slurm_cli("list", "--json"))
    assert (job["state"], job["backend"], job["exit_code"]) == ("completed", "slurm", 0)
    got = slurm_cli("get", job["id"], "-o", str(tmp_path / "got"), "--json")
    assert got.code == 0, got.stderr
    files = got.json()
    assert isinstance(files, list)
    assert str(tmp_path / "got" / "result.txt") in files
    assert (tmp_path / "got" / "result.txt").read_text() == "done\n"


def test_cancel_stops_a_running_job_and_leaves_no_process(
    slurm_cli: Cli, slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    job_id = submitted_id(slurm_cli, str(sleep_job(tmp_path, 311)), "--backend", "slurm")
    job = wait_state(slurm_cli, job_id, "running")
    assert wait_present(["sleep", "311"]), "the payload never started"
    res = slurm_cli("cancel", job_id)
    assert res.code == 0, res.stderr
    assert res.stdout.split() == [job_id, "cancelled"]
    assert wait_gone(["sleep", "311"]) == []
    queue = slurm_cluster.run("squeue", "-h", "-t", "all", "-j", job["native_id"], "-o", "%T")
    assert queue.stdout.strip() in ("CANCELLED", "")  # "" once Slurm forgot it
    assert wait_state(slurm_cli, job_id, "cancelled", timeout=5)["state"] == "cancelled"


def test_dry_run_prints_the_batch_script(slurm_cli: Cli) -> None:
    res = slurm_cli("submit", str(EXAMPLES / "hello.yaml"), "--backend", "slurm", "--dry-run")
    assert res.code == 0, res.stderr
    assert "#SBATCH" in res.stdout
    assert slurm_cli("list", "--json").json() == []
