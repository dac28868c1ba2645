"""End to end through the real ``cops-grid`` command against the private one-node swarm."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from computeops_grid.bench.daemons import PrivateDockerd
from tests.conftest import ROOT, Cli

pytestmark = [pytest.mark.service, pytest.mark.slow]


def only_job(cli: Cli) -> dict[str, Any]:
    """The one job `cops-grid list --json` shows."""
    jobs = cli("list", "--json").json()
    assert isinstance(jobs, list)
    assert len(jobs) == 1, jobs
    assert isinstance(jobs[0], dict)
    return jobs[0]


@pytest.fixture
def swarm_cli(cli: Cli, cops_home: Path, swarm_daemon: PrivateDockerd) -> Cli:
    config = cops_home / "config.yaml"
    config.write_text(
        config.read_text() + f"  swarm:\n    docker_host: {swarm_daemon.host}\n    stop_grace: 1\n"
    )
    return cli


def test_submit_hello_wait_prints_the_payload_output(swarm_cli: Cli, tmp_path: Path) -> None:
    res = swarm_cli("submit", "etc/examples/hello.yaml", "--backend", "swarm", "--wait", cwd=ROOT)
    assert res.code == 0, res.stderr
    assert "Hello from Linux in a container, job hello" in res.stdout
    job = only_job(swarm_cli)
    assert job["state"] == "completed"
    got = swarm_cli("get", job["id"], "-o", str(tmp_path / "out"))
    assert got.code == 0, got.stderr
    assert (tmp_path / "out" / "result.txt").read_text() == "done\n"


def test_parametric_on_swarm_records_each_exit_code(swarm_cli: Cli, tmp_path: Path) -> None:
    jobfile = tmp_path / "p.yaml"
    jobfile.write_text(
        "name: e-${i}\nimage: docker://busybox:latest\ncommand: sh\n"
        "arguments: [-c, 'exit $(( ${i} % 3 ))']\nparameters: {i: {start: 0, stop: 19}}\n"
        "resources: {memory: 64MiB}\n"
    )
    res = swarm_cli("submit", str(jobfile), "--backend", "swarm", "--wait", timeout=300)
    assert res.code != 0  # some elements failed: --wait says so
    jobs = swarm_cli("list", "--json").json()
    assert isinstance(jobs, list)
    assert len(jobs) == 20
    for job in jobs:
        i = int(job["name"].split("-")[1])
        assert job["exit_code"] == i % 3, job
        assert job["state"] == ("completed" if i % 3 == 0 else "failed")


def test_cancel_stops_a_running_service(swarm_cli: Cli, tmp_path: Path, swarm_daemon: PrivateDockerd) -> None:
    jobfile = tmp_path / "s.yaml"
    jobfile.write_text("name: s\nimage: docker://busybox:latest\ncommand: sleep\narguments: ['300']\n")
    res = swarm_cli("submit", str(jobfile), "--backend", "swarm", "--json")
    assert res.code == 0, res.stderr
    job = only_job(swarm_cli)
    for _ in range(100):
        if swarm_daemon.cli("ps", "-q", "--filter", f"label=org.cops-grid.id={job['id']}").stdout.strip():
            break
        time.sleep(0.2)
    assert swarm_cli("cancel", job["id"]).code == 0
    after = only_job(swarm_cli)
    assert after["state"] == "cancelled"
    assert (
        swarm_daemon.cli("ps", "-q", "--filter", f"label=org.cops-grid.id={job['id']}").stdout.strip() == ""
    )
