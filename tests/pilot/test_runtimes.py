"""Real payloads through every runtime that works here, from the squashfs CVMFS stand-in mounted
read-only at /cvmfs/unpacked.cern.ch in a private mount namespace, as root and as an unprivileged
user: output, binds, environment, working directory and exit codes (0, 42, killed by a signal)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import IMAGE, PilotRunner

pytestmark = [pytest.mark.root, pytest.mark.slow]

AS_ROOT = ["charliecloud", "bubblewrap", "proot", "runc", "podman", "udocker"]
AS_USER = ["charliecloud", "bubblewrap", "proot", "runc", "udocker"]  # podman: see test below
CASES = [(rt, "root") for rt in AS_ROOT] + [(rt, "copsuser") for rt in AS_USER]
CANNOT_BIND_READONLY = {"proot", "udocker", "charliecloud"}  # ptrace binds; ch-run 0.31 binds rw

PAYLOAD = (
    "echo out:$FOO; echo pwd:$(pwd); echo home:$HOME; echo pass:$PASSED; echo leak:$HOST_ONLY;"
    " cat /etc/image-marker; ls /cvmfs; cat /data/in.txt; echo made > result.txt;"
    " (echo x > /data/w) 2>/dev/null && echo bind:rw || echo bind:ro; exit 42"
)


@pytest.mark.parametrize(("rt", "user"), CASES)
def test_payload_through_runtime(run_pilot: PilotRunner, rt: str, user: str) -> None:
    data = run_pilot.node.workdir(user)
    (data / "in.txt").write_text("bound-input\n")
    result = run_pilot(
        [
            "--image",
            IMAGE,
            "--runtime",
            rt,
            "--env",
            "FOO=bar baz",
            "--pass-env",
            "PASSED",
            "--bind",
            f"{data}:/home:ro",
            "--",
            "/bin/sh",
            "-c",
            PAYLOAD.replace("/data", "/home"),
        ],
        user=user,
        env={"PASSED": "yes", "HOST_ONLY": "secret"},
    )
    assert result.code == 42, result.stderr
    lines = result.stdout.splitlines()
    assert "out:bar baz" in lines
    assert "pwd:/srv" in lines
    assert "home:/srv" in lines
    assert "pass:yes" in lines
    assert "leak:" in lines  # the host environment does not reach the payload
    assert "cops-test-image" in lines  # the image came from the CVMFS stand-in
    assert "unpacked.cern.ch" in lines  # /cvmfs is bound into the container
    assert "bound-input" in lines
    if rt not in CANNOT_BIND_READONLY:
        assert "bind:ro" in lines
    assert (result.workdir / "result.txt").read_text() == "made\n"
    assert result.report["runtime"] == rt
    assert result.report["exit_code"] == 42
    assert result.report["wrapper_exit_reason"] == "payload"
    assert str(result.report["image_path"]).startswith("/cvmfs/unpacked.cern.ch/.flat/")


@pytest.mark.parametrize("rt", AS_ROOT)
def test_exit_zero_and_rootfs_image(run_pilot: PilotRunner, rt: str) -> None:
    rootfs = str(run_pilot.node.rootfs)
    result = run_pilot(["--image", rootfs, "--runtime", rt, "--", "/bin/true"], cvmfs=False)
    assert result.code == 0, result.stderr
    assert result.report["exit_code"] == 0
    assert result.report["image_path"] == rootfs


def _find_pid(marker: str, deadline: float) -> int:
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                argv = Path("/proc", entry, "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if len(argv) > 1 and os.path.basename(argv[0]) == b"sleep" and argv[1] == marker.encode():
                return int(entry)
        time.sleep(0.05)
    raise AssertionError(f"payload 'sleep {marker}' never appeared")


@pytest.mark.parametrize(("rt", "user"), [("charliecloud", "copsuser"), *((rt, "root") for rt in AS_ROOT)])
def test_payload_killed_by_signal(run_pilot: PilotRunner, rt: str, user: str) -> None:
    marker = f"{57 + AS_ROOT.index(rt)}.{os.getpid() % 1000}"
    argv, env, workdir = run_pilot.command(
        ["--image", IMAGE, "--runtime", rt, "--", "sleep", marker], user=user
    )
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        os.kill(_find_pid(marker, time.monotonic() + 60), signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGKILL, stderr
    report = (workdir / "report.json").read_text()
    assert '"signal": 9' in report


def test_podman_unprivileged_on_foreign_rootfs_is_refused(run_pilot: PilotRunner) -> None:
    """Rootless podman cannot use a read-only image it does not own: the probe says so."""
    result = run_pilot(["--image", IMAGE, "--runtime", "podman", "--", "/bin/true"], user="copsuser")
    if result.code == 0:
        assert result.report["runtime"] == "podman"
        return
    assert result.code == 241, result.stderr
    assert result.report["attempts"][0]["status"] == "probe-failed"
    assert "error 241" in result.stderr


def test_probe_cache_makes_second_run_warm(run_pilot: PilotRunner) -> None:
    first = run_pilot(["--image", IMAGE, "--runtime", "proot", "--", "/bin/true"])
    second = run_pilot(["--image", IMAGE, "--runtime", "proot", "--", "/bin/true"])
    assert first.code == second.code == 0
    attempt = second.report["attempts"][0]
    assert attempt["cached"] is True
    assert attempt["probe_seconds"] == 0.0
