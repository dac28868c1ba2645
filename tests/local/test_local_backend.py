"""The local backend end to end: real CLI, real pilot wrapper, real container runtime."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, Cli


def write_job(path: Path, **fields: object) -> Path:
    base = {"name": "t", "image": "docker://busybox:latest", "command": "sh"}
    base.update(fields)
    path.write_text(json.dumps(base))  # JSON is YAML
    return path


def job_row(cli: Cli, job_id: str) -> dict[str, object]:
    result = cli("status", job_id, "--json")
    assert result.code == 0, result.stderr
    rows = result.json()
    assert isinstance(rows, list)
    return dict(rows[0])


def test_hello_example_prints_payload_output_and_is_listed_completed(cli: Cli, tmp_path: Path) -> None:
    result = cli("submit", str(EXAMPLES / "hello.yaml"), "--wait")
    assert result.code == 0, result.stderr
    assert "Hello from Linux in a container, job hello" in result.stdout
    rows = cli("list", "--json").json()
    assert isinstance(rows, list)
    assert len(rows) == 1
    assert rows[0]["state"] == "completed"
    assert rows[0]["exit_code"] == 0
    fetched = cli("get", rows[0]["id"], "-o", str(tmp_path / "out"), "--json")
    assert fetched.code == 0, fetched.stderr
    assert (tmp_path / "out" / "result.txt").read_text() == "done\n"
    report = json.loads((tmp_path / "out" / "cops-report.json").read_text())
    assert report["exit_code"] == 0
    assert report["runtime"]


def test_payload_runs_contained_in_its_workdir_with_job_env(cli: Cli, tmp_path: Path) -> None:
    job = write_job(
        tmp_path / "j.yaml",
        arguments=[
            "-c",
            "pwd; echo $MYVAR; head -1 /etc/passwd; ls /bin/busybox;"
            " test -e /etc/debian_version || echo no-host-etc",
        ],
        environment={"MYVAR": "from-the-job"},
    )
    result = cli("submit", str(job), "--wait")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()[1:]  # the first line is the job id
    assert lines[0] == "/srv"  # the pilot's working directory: the bound job scratch
    assert lines[1] == "from-the-job"
    assert lines[2].startswith("root:x:0:0")
    assert "no-host-etc" in lines  # it ran in the busybox image, not on the host


def test_failing_payload_exit_code_is_recorded(cli: Cli) -> None:
    result = cli("submit", str(EXAMPLES / "many.yaml"), "--wait")
    assert result.code == 8, result.stderr  # --wait saw a failure
    rows = {r["name"]: r for r in cli("list", "--json").json()}  # type: ignore[union-attr]
    assert rows["fails-with-42"]["state"] == "failed"
    assert rows["fails-with-42"]["exit_code"] == 42
    assert rows["list-root"]["state"] == "completed"
    assert "about to fail" in cli("logs", str(rows["fails-with-42"]["id"])).stdout


def test_missing_image_fails_with_the_wrapper_reason(cli: Cli, tmp_path: Path) -> None:
    job = write_job(tmp_path / "j.yaml", image="docker://nosuch/image:1", arguments=["-c", "true"])
    result = cli("submit", str(job), "--wait")
    assert result.code == 8
    row = cli("list", "--json").json()[0]  # type: ignore[index]
    assert row["exit_code"] == 242
    assert "nosuch/image:1" in row["message"]


def test_cancel_stops_a_running_job_and_its_processes(cli: Cli, tmp_path: Path) -> None:
    job = write_job(tmp_path / "j.yaml", arguments=["-c", "echo started; sleep 300"])
    job_id = cli("submit", str(job)).stdout.strip()
    deadline = time.time() + 60
    while job_row(cli, job_id)["state"] != "running" and time.time() < deadline:
        time.sleep(0.2)
    assert job_row(cli, job_id)["state"] == "running"
    jobdir = cli.home / "jobs" / "local" / job_id
    pgid = int((jobdir / "runner.pid").read_text())
    result = cli("cancel", job_id)
    assert result.code == 0
    assert "cancelled" in result.stdout
    assert job_row(cli, job_id)["state"] == "cancelled"
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)  # no process of the job is left


def test_parametric_job_outputs_per_element(cli: Cli, tmp_path: Path) -> None:
    result = cli("submit", str(EXAMPLES / "parametric.yaml"), "--wait", timeout=300)
    assert result.code == 0, result.stderr
    rows = cli("list", "--json").json()
    assert isinstance(rows, list)
    assert len(rows) == 10
    assert len({r["bulk_id"] for r in rows}) == 1
    assert sorted(r["index"] for r in rows) == list(range(10))
    sim4 = next(r for r in rows if r["name"] == "sim-4")
    cli("get", str(sim4["id"]), "-o", str(tmp_path / "o"))
    assert (tmp_path / "o" / "out-4.txt").read_text() == "seed 4 index 3\n"


def test_resubmit_of_a_failed_job_creates_a_linked_copy(cli: Cli, tmp_path: Path) -> None:
    job = write_job(tmp_path / "j.yaml", arguments=["-c", "exit 3"])
    first = cli("submit", str(job), "--wait")
    assert first.code == 8
    old_id = cli("list", "--json").json()[0]["id"]  # type: ignore[index]
    again = cli("resubmit", old_id, "--wait")
    assert again.code == 8  # it fails again, the same way
    rows = cli("list", "--json").json()
    assert isinstance(rows, list)
    assert len(rows) == 2
    assert rows[1]["exit_code"] == 3
    assert rows[1]["id"] != old_id


def test_dry_run_prints_the_wrapper_command_and_stores_nothing(cli: Cli) -> None:
    result = cli("submit", str(EXAMPLES / "hello.yaml"), "--dry-run")
    assert result.code == 0
    assert "import cops_pilot" in result.stdout  # the wrapper, started as a bytecode-cached module
    assert "--image docker://busybox:latest" in result.stdout
    assert "-- sh -c" in result.stdout
    assert cli("list", "--json").json() == []
