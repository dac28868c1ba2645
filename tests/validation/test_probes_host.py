"""Probes that read the node itself: OK, WARNING/CRITICAL and UNKNOWN on real conditions."""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.validation.probes import PROBES, probe

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mounts, cgroups)")


def test_probes_are_python36_compatible() -> None:
    proc = subprocess.run(
        ["vermin", "-t=3.6-", "--no-tips", "--violations", str(PROBES), str(PROBES.parent / "run_probes.py")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- CVMFS -------------------------------------------------------------------------------------
def test_cvmfs_ok_and_perfdata(tmp_path: Path) -> None:
    (tmp_path / "unpacked.cern.ch" / "sub").mkdir(parents=True)
    (tmp_path / "unpacked.cern.ch" / "sub" / "file").write_text("x" * 100)
    run = probe("cvmfs", "--cvmfs-root", str(tmp_path), "--no-client")
    assert run.code == 0
    assert run.status_line.startswith("CVMFS OK")
    assert "| unpacked.cern.ch_latency=" in run.status_line
    assert ";1;5;0" in run.status_line


def test_cvmfs_missing_repository_is_critical(tmp_path: Path) -> None:
    (tmp_path / "unpacked.cern.ch").mkdir()
    (tmp_path / "unpacked.cern.ch" / "f").write_text("x")
    run = probe(
        "cvmfs", "--cvmfs-root", str(tmp_path), "--repo", "unpacked.cern.ch", "--repo", "atlas.cern.ch"
    )
    assert run.code == 2
    assert "atlas.cern.ch: not mounted" in run.status_line


def test_cvmfs_slow_read_is_warning(tmp_path: Path) -> None:
    (tmp_path / "unpacked.cern.ch").mkdir()
    (tmp_path / "unpacked.cern.ch" / "f").write_text("x")
    run = probe("cvmfs", "--cvmfs-root", str(tmp_path), "--warn-latency", "0.0000001", "--no-client")
    assert run.code == 1
    assert "WARNING" in run.status_line


def test_cvmfs_client_failure_is_critical(tmp_path: Path) -> None:
    """A stand-in ``cvmfs_config`` (no CVMFS client here) replaying the real probe output format."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "cvmfs_config"
    tool.write_text('#!/bin/sh\nshift\nfor r in "$@"; do echo "Probing /cvmfs/$r... Failed!"; done\nexit 1\n')
    tool.chmod(0o755)
    run = probe("cvmfs", env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert run.code == 2
    assert "cvmfs_config probe Failed!" in run.status_line


def test_cvmfs_bad_argument_is_unknown() -> None:
    run = probe("cvmfs", "--known-file", "no-colon")
    assert run.code == 3
    assert "REPO:PATH" in run.status_line


# -- user namespaces ---------------------------------------------------------------------------
def test_userns_ok() -> None:
    run = probe("userns")
    assert run.code == 0
    assert "max_user_namespaces=" in run.status_line


def test_userns_disabled_is_critical() -> None:
    """max_user_namespaces set to 0 inside a user namespace: the real kernel refuses the unshare."""
    script = f"echo 0 > /proc/sys/user/max_user_namespaces && exec {sys.executable} {PROBES}/check_userns.py"
    proc = subprocess.run(["unshare", "-Ur", "sh", "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stdout
    assert "max_user_namespaces is 0" in proc.stdout
    assert "No space left on device" in proc.stdout


def test_userns_low_limit_is_warning() -> None:
    script = f"echo 5 > /proc/sys/user/max_user_namespaces && exec {sys.executable} {PROBES}/check_userns.py"
    proc = subprocess.run(["unshare", "-Ur", "sh", "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "max_user_namespaces=5;1000;1;0" in proc.stdout


def test_userns_unreadable_limits_is_unknown(tmp_path: Path) -> None:
    run = probe("userns", "--sysctl-root", str(tmp_path / "none"))
    assert run.code == 3


# -- scratch -----------------------------------------------------------------------------------
def test_scratch_ok(tmp_path: Path) -> None:
    run = probe(
        "scratch", "--path", str(tmp_path), "--size", "4", "--warn-free", "0.01", "--crit-free", "0.001"
    )
    assert run.code == 0
    assert "write_MiB_per_s=" in run.status_line


@needs_root
def test_full_scratch_is_critical(tmp_path: Path) -> None:
    """A 1 MiB tmpfs filled up, in a private mount namespace."""
    full = tmp_path / "full"
    full.mkdir()
    script = (
        f"mount -t tmpfs -o size=1m tmpfs {full} "
        f"&& (dd if=/dev/zero of={full}/fill bs=64k 2>/dev/null; true) "
        f"&& exec {sys.executable} {PROBES}/check_scratch.py --path {full} --size 4"
    )
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stdout
    assert "scratch full" in proc.stdout or "free" in proc.stdout.splitlines()[0]


def test_scratch_missing_dir_is_unknown(tmp_path: Path) -> None:
    assert probe("scratch", "--path", str(tmp_path / "missing")).code == 3


# -- CPU and memory ----------------------------------------------------------------------------
def test_cpu_ok_reports_level() -> None:
    run = probe("cpu")
    assert run.code == 0
    assert "x86_64_level=" in run.status_line


def test_cpu_fewer_cores_than_required() -> None:
    """taskset pins the probe to one core: the real affinity it reads is 1."""
    run = probe("cpu", "--warn-cores", "2", prefix=["taskset", "-c", "0"])
    assert run.code == 1
    assert "1 cores" in run.status_line


def test_cpu_level_below_requirement_is_critical(tmp_path: Path) -> None:
    """/proc/cpuinfo as captured on an x86-64-v2 node (Westmere)."""
    info = tmp_path / "cpuinfo"
    flags = "fpu cx8 cmov mmx fxsr sse sse2 syscall lm pni ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm"
    info.write_text(f"processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU X5650\nflags\t\t: {flags}\n")
    run = probe("cpu", "--cpuinfo", str(info), "--require-level", "x86-64-v3")
    assert run.code == 2
    assert "x86-64-v2, x86-64-v3 required" in run.status_line


def test_cpu_no_flags_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text("processor\t: 0\n")
    assert probe("cpu", "--cpuinfo", str(tmp_path / "cpuinfo")).code == 3


def test_memory_ok() -> None:
    run = probe("memory", "--warn-per-core", "0.5", "--crit-per-core", "0.25")
    assert run.code == 0
    assert "mem_per_core=" in run.status_line


@needs_root
def test_memory_cgroup_limit_is_critical() -> None:
    """A real cgroup v1 memory limit of 1 GiB around the probe."""
    mine = next(line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()
                if line.split(":")[1] == "memory")  # fmt: skip
    group = Path("/sys/fs/cgroup/memory") / mine.lstrip("/") / f"cops-validation-{os.getpid()}"
    if not group.parent.is_dir():
        pytest.skip("no cgroup v1 memory controller on this machine")
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(2**30))
        script = f"echo $$ > {group}/cgroup.procs && exec {sys.executable} {PROBES}/check_memory.py --cores 2"
        proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)
    finally:
        group.rmdir()
    assert proc.returncode == 2, proc.stdout
    assert "0.50 GiB per core" in proc.stdout
    assert "cgroup memory limit 1.00 GiB" in proc.stdout


def test_memory_unreadable_is_unknown(tmp_path: Path) -> None:
    assert probe("memory", "--meminfo", str(tmp_path / "none")).code == 3


# -- GPU ---------------------------------------------------------------------------------------
def test_gpu_none_required_is_ok() -> None:
    if list(Path("/dev").glob("nvidia[0-9]*")):
        pytest.skip("this machine has a GPU")
    run = probe("gpu")
    assert run.code == 0
    assert "no GPU" in run.status_line


def test_gpu_required_but_absent_is_critical() -> None:
    if list(Path("/dev").glob("nvidia[0-9]*")):
        pytest.skip("this machine has a GPU")
    assert probe("gpu", "--require", "1").code == 2


def test_gpu_broken_driver_tool_is_unknown(tmp_path: Path) -> None:
    tool = tmp_path / "nvidia-smi"
    message = "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver"
    tool.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 9\n")
    tool.chmod(0o755)
    run = probe("gpu", env={"PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert run.code == 3
    assert "nvidia-smi failed (exit 9)" in run.status_line


# -- credentials -------------------------------------------------------------------------------
def _cert(tmp_path: Path, days_before: float, days_after: float) -> Path:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cops test proxy")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=days_before))
        .not_valid_after(now + datetime.timedelta(days=days_after))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path = tmp_path / "x509up"
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, pem)
    os.close(fd)
    return path


def _jwt(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


NO_CREDS = {"X509_USER_PROXY": "/nonexistent", "BEARER_TOKEN": "", "BEARER_TOKEN_FILE": "/nonexistent"}


def test_credentials_valid_proxy_ok(tmp_path: Path) -> None:
    proxy = _cert(tmp_path, 1, 30)
    run = probe("credentials", "--require", "proxy", env={**NO_CREDS, "X509_USER_PROXY": str(proxy)})
    assert run.code == 0
    assert "proxy valid" in run.status_line
    assert "proxy_hours=" in run.status_line


def test_credentials_expired_proxy_is_critical(tmp_path: Path) -> None:
    proxy = _cert(tmp_path, 3, -1)
    run = probe("credentials", env={**NO_CREDS, "X509_USER_PROXY": str(proxy)})
    assert run.code == 2
    assert "proxy expired" in run.status_line


def test_credentials_world_readable_proxy_is_critical(tmp_path: Path) -> None:
    proxy = _cert(tmp_path, 1, 30)
    proxy.chmod(0o644)
    run = probe("credentials", env={**NO_CREDS, "X509_USER_PROXY": str(proxy)})
    assert run.code == 2
    assert "readable by others" in run.status_line


def test_credentials_short_token_and_wrong_vo(tmp_path: Path) -> None:
    token = tmp_path / "bt"
    token.write_text(
        _jwt({"exp": time.time() + 7200, "iss": "https://iam.example", "wlcg.groups": ["/dteam"]})
    )
    env = {**NO_CREDS, "BEARER_TOKEN_FILE": str(token)}
    run = probe("credentials", "--require", "token", "--vo", "dteam", env=env)
    assert run.code == 1
    assert "token valid 2.0 h" in run.status_line
    assert probe("credentials", "--vo", "atlas", env=env).code == 2
    assert "eyJ" not in probe("credentials", env=env).out  # the token itself is never printed


def test_credentials_garbled_token_is_unknown(tmp_path: Path) -> None:
    run = probe("credentials", env={**NO_CREDS, "BEARER_TOKEN": "not-a-jwt"})
    assert run.code == 3
    assert "not a JWT" in run.status_line


def test_credentials_missing_when_required_is_critical() -> None:
    assert probe("credentials", "--require", "any", env=NO_CREDS).code == 2
    assert probe("credentials", "--require", "none", env=NO_CREDS).code == 0
