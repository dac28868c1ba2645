"""Probes that go through the real pilot wrapper and a real container runtime on this machine."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.validation.probes import PILOT, probe

BUSYBOX = "docker://busybox:latest"
pytestmark = pytest.mark.skipif(not PILOT.is_file(), reason="pilot wrapper not in this checkout")


def _rootfs(image_root: Path) -> Path:
    return image_root / "registry.hub.docker.com" / "library" / "busybox:latest"


def _broken_bin(tmp_path: Path, name: str) -> dict[str, str]:
    bindir = tmp_path / "broken-bin"
    bindir.mkdir(exist_ok=True)
    tool = bindir / name
    tool.write_text(
        "#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\nexit 1\n"
    )
    tool.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}", "COPS_PILOT_CACHE_TTL": "0"}


def test_runtime_ok_names_the_winner(tmp_path: Path) -> None:
    run = probe("runtime", "--pilot", str(PILOT), "--runtime", "bubblewrap,proot", cwd=tmp_path)
    assert run.code == 0, run.out
    assert "bubblewrap wins" in run.status_line


def test_runtime_outside_preference_is_warning(tmp_path: Path) -> None:
    run = probe("runtime", "--pilot", str(PILOT), "--runtime", "proot", "--prefer", "apptainer", cwd=tmp_path)
    assert run.code == 1, run.out
    assert "preferred apptainer not working" in run.status_line


def test_broken_runtime_binary_is_critical(tmp_path: Path) -> None:
    env = _broken_bin(tmp_path, "bwrap")
    run = probe("runtime", "--pilot", str(PILOT), "--runtime", "bubblewrap", env=env, cwd=tmp_path)
    assert run.code == 2, run.out
    assert "no working container runtime" in run.status_line
    assert "bubblewrap: refused" in run.out


def test_runtime_without_wrapper_is_unknown(tmp_path: Path) -> None:
    run = probe("runtime", "--pilot", str(tmp_path / "missing.py"))
    assert run.code == 3


def test_image_run_checksum_matches(tmp_path: Path, image_root: Path) -> None:
    expected = hashlib.sha256((_rootfs(image_root) / "bin" / "busybox").read_bytes()).hexdigest()
    args = ["--pilot", str(PILOT), "--image-root", str(image_root), "--runtime", "bubblewrap"]
    run = probe("image_run", *args, "--image", BUSYBOX, "--file", "/bin/busybox",
                "--sha256", f"{BUSYBOX}={expected}", cwd=tmp_path)  # fmt: skip
    assert run.code == 0, run.out
    assert "checksum matches" in run.status_line
    bad = probe("image_run", *args, "--image", BUSYBOX, "--file", "/bin/busybox",
                "--sha256", f"{BUSYBOX}={'0' * 64}", cwd=tmp_path)  # fmt: skip
    assert bad.code == 2
    assert "checksum mismatch" in bad.status_line


def test_image_absent_is_critical(tmp_path: Path, image_root: Path) -> None:
    run = probe("image_run", "--pilot", str(PILOT), "--image-root", str(image_root),
                "--image", "docker://nosuch/image:1", cwd=tmp_path)  # fmt: skip
    assert run.code == 2, run.out
    assert "own code 242" in run.status_line


def test_image_run_without_image_is_unknown() -> None:
    assert probe("image_run", "--pilot", str(PILOT)).code == 3


def test_binds_scratch_visible(tmp_path: Path, image_root: Path) -> None:
    run = probe("binds", "--pilot", str(PILOT), "--image-root", str(image_root), "--runtime", "bubblewrap",
                "--image", BUSYBOX, env={"TMPDIR": str(tmp_path)}, cwd=tmp_path)  # fmt: skip
    assert run.code == 0, run.out
    assert "scratch bound read-write" in run.status_line


def test_binds_without_runtime_is_unknown(tmp_path: Path, image_root: Path) -> None:
    env = {**_broken_bin(tmp_path, "bwrap"), "TMPDIR": str(tmp_path)}
    run = probe("binds", "--pilot", str(PILOT), "--image-root", str(image_root), "--runtime", "bubblewrap",
                "--image", BUSYBOX, env=env, cwd=tmp_path)  # fmt: skip
    assert run.code == 3, run.out
    assert "binds not testable" in run.status_line
