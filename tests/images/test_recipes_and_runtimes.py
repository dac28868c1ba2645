"""Recipes (spython convert, buildah build offline) and the published image run by the pilot wrapper."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from computeops_grid import worker
from computeops_grid.images.operations import publish_sources
from computeops_grid.images.recipes import convert

from .conftest import NAME, BuiltImage

DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
ENV GREETING=hello
CMD ["/bin/busybox", "echo", "built"]
"""


def test_convert_dockerfile_to_singularity_and_back(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text('FROM busybox:latest\nENV GREETING=hello\nRUN echo hi > /hi\nCMD ["cat", "/hi"]\n')
    definition = convert(dockerfile)
    assert "Bootstrap: docker" in definition
    assert "From: busybox:latest" in definition
    assert "echo hi > /hi" in definition
    (tmp_path / "image.def").write_text(definition)
    back = convert(tmp_path / "image.def")
    assert "FROM busybox:latest" in back
    assert "echo hi > /hi" in back


@pytest.mark.slow
@pytest.mark.root
def test_build_offline_and_publish(tmp_path: Path) -> None:
    if shutil.which("buildah") is None or os.geteuid() != 0:
        pytest.skip("needs root and buildah")
    shutil.copy2("/bin/busybox", tmp_path / "busybox")
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    repo = tmp_path / "repo"
    proc = subprocess.run(
        [
            "cops-grid",
            "image",
            "build",
            str(tmp_path / "Dockerfile"),
            "--name",
            "docker://cops/built:1",
            "--repo-root",
            str(repo),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["path"] == "registry.hub.docker.com/cops/built:1"
    flat = repo / "registry.hub.docker.com" / "cops" / "built:1"
    assert (flat / "bin" / "busybox").is_file()
    env = (flat / ".singularity.d" / "env" / "10-docker2singularity.sh").read_text()
    assert 'export GREETING="${GREETING:-"hello"}"' in env


RUNTIMES = ["bubblewrap", "proot", "charliecloud"]


@pytest.mark.slow
@pytest.mark.root
def test_published_image_runs_identically_on_three_runtimes(built_image: BuiltImage, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    publish_sources([f"oci:{built_image.oci}"], repo, name=f"docker://{NAME}")
    outputs = {}
    for runtime in RUNTIMES:
        work = tmp_path / runtime
        work.mkdir()
        argv = [
            sys.executable,
            str(worker.pilot()),
            "--image",
            "docker://cops/test:v1",
            "--image-root",
            str(repo),
            "--runtime",
            runtime,
            "--workdir",
            str(work),
            "--require-container",
            "--",
            "/bin/sh",
            "-c",
            "cat /data/keep.txt /data/three.txt; ls /data /data/old",
        ]
        proc = subprocess.run(
            argv, capture_output=True, text=True, check=False, env={**os.environ, "USER": "root"}
        )
        assert proc.returncode == 0, f"{runtime}: {proc.stderr}"
        outputs[runtime] = proc.stdout
    assert len(set(outputs.values())) == 1, outputs
    out = outputs["bubblewrap"]
    assert "keep\nthree\n" in out
    assert "gone.txt" not in out
    assert "new.txt" in out
    assert "\na\n" not in out
