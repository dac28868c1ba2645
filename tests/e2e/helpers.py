"""Helpers of the end-to-end CLI tests: job files, polling the real CLI, leftover processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.conftest import Cli, CliResult


def sleep_job(directory: Path, seconds: int) -> Path:
    """A job that sleeps ``seconds`` (a number no other test uses, to find its processes)."""
    path = directory / "sleep.yaml"
    path.write_text(
        "name: sleeper\nimage: docker://busybox:latest\ncommand: sleep\n"
        f"arguments: ['{seconds}']\nresources: {{walltime: '00:30:00', memory: 256MiB}}\n"
    )
    return path


def submitted_id(cli: Cli, *args: str) -> str:
    res = cli("submit", *args, "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert isinstance(data, list)
    assert len(data) == 1
    return str(data[0]["id"])


def wait_state(cli: Cli, job_id: str, wanted: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        res = cli("status", job_id, "--json")
        assert res.code == 0, res.stderr
        data = res.json()
        assert isinstance(data, list)
        job: dict[str, Any] = data[0]
        if job["state"] == wanted or time.monotonic() > deadline:
            assert job["state"] == wanted, job
            return job
        time.sleep(1)


def processes_with(argv: list[str]) -> list[int]:
    """PIDs whose command line is exactly ``argv`` (e.g. ``["sleep", "313"]``)."""
    wanted = b"\0".join(a.encode() for a in argv) + b"\0"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline == wanted or cmdline.endswith(b"/" + wanted):
            found.append(int(proc.name))
    return found


def wait_gone(argv: list[str], timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := processes_with(argv)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def wait_present(argv: list[str], timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while not (found := processes_with(argv)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def rows(res: CliResult) -> list[dict[str, Any]]:
    """The JSON list a ``--json`` command printed (after checking it succeeded)."""
    assert res.code == 0, res.stderr
    data = res.json()
    assert isinstance(data, list)
    return data


def show(cli: Cli, job_id: str) -> dict[str, Any]:
    """What ``cops-grid show ID --json`` printed: the job's record with its provenance."""
    res = cli("show", job_id, "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert isinstance(data, dict)
    return data
