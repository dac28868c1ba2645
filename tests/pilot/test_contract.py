"""The wrapper's contract: Python 3.6 syntax, the immutable exit-code table, image names, the
apptainer/singularity argv, dry-run, the report, and `cops-grid pilot` calling the same code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from computeops_grid import worker
from computeops_grid.cli.pilot import load_wrapper

from .conftest import make_rootfs


@pytest.fixture(scope="module")
def pilot() -> ModuleType:
    return load_wrapper()


def test_wrapper_is_python36_stdlib_single_file() -> None:
    path = worker.pilot()
    proc = subprocess.run(
        ["vermin", "-t=3.6-", "--no-tips", "--violations", str(path)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    link = Path(__file__).resolve().parents[2] / "pilot" / "cops-pilot"  # the checkout's entry point
    assert link.is_symlink()
    assert link.resolve() == path
    assert os.access(path, os.X_OK)
    assert path.read_text().startswith("#!/usr/bin/env python3\n")


def test_exit_code_table_is_fixed_and_immutable(pilot: ModuleType) -> None:
    table = pilot.EXIT_CODES
    assert {code: reason for code, (reason, _) in table.items()} == {
        240: "bad-arguments",
        241: "no-runtime",
        242: "image-not-found",
        243: "image-root-absent",
        244: "start-failed",
        245: "stage-in-failed",
        246: "stage-out-failed",
        247: "job-index-unknown",
        248: "job-dir-unusable",
        249: "internal-error",
    }
    with pytest.raises(TypeError):
        table[250] = ("x", "y")


@pytest.mark.parametrize(
    ("name", "relpath"),
    [
        ("docker://busybox", "registry.hub.docker.com/library/busybox:latest"),
        ("docker://centos:7", "registry.hub.docker.com/library/centos:7"),
        ("docker://atlas/athena:22.0", "registry.hub.docker.com/atlas/athena:22.0"),
        ("docker://gitlab-registry.cern.ch/lhcb/app:v1", "gitlab-registry.cern.ch/lhcb/app:v1"),
        ("docker://host.example:5005/a/b/c", "host.example:5005/a/b/c:latest"),
        ("docker://localhost/img:2", "localhost/img:2"),
    ],
)
def test_image_names_resolve_like_ducc(pilot: ModuleType, name: str, relpath: str) -> None:
    assert pilot.image_relpath(name) == relpath


def test_image_symlink_into_flat_is_followed(pilot: ModuleType, tmp_path: Path) -> None:
    flat = make_rootfs(tmp_path / ".flat" / "ab" / "abcd")
    link = tmp_path / "registry.hub.docker.com" / "library" / "busybox:1"
    link.parent.mkdir(parents=True)
    link.symlink_to("../../.flat/ab/abcd")
    image = pilot.resolve_image("docker://busybox:1", str(tmp_path))
    assert image.path == str(flat)
    with pytest.raises(pilot.PilotError) as info:
        pilot.resolve_image("docker://busybox:2", str(tmp_path))
    assert info.value.code == 242
    assert str(tmp_path / "registry.hub.docker.com/library/busybox:2") in info.value.line()


@pytest.mark.parametrize(
    ("rt", "prefix"), [("apptainer", "APPTAINERENV_"), ("singularity", "SINGULARITYENV_")]
)
def test_apptainer_argv_follows_the_real_cli(pilot: ModuleType, tmp_path: Path, rt: str, prefix: str) -> None:
    """apptainer/singularity are not packaged for Debian 12 nor on PyPI, so they cannot run here:
    this checks the argv against the documented CLI (exec --cleanenv --contain --home --pwd --bind
    --nv, payload variables as APPTAINERENV_*/SINGULARITYENV_*, never in argv)."""
    workdir = tmp_path / "wd"
    workdir.mkdir()
    image = pilot.Image("x.sif", "/images/x.sif", "sif")
    binds = [pilot.Bind("/cvmfs", "/cvmfs", False), pilot.Bind("/data", "/data", True)]
    env = {"PATH": "/usr/bin", "HOME": "/srv", "TOKEN": "s3cret"}
    launch = pilot.Launch(image, ["/bin/echo", "hi"], str(workdir), binds, env, True, str(tmp_path))
    argv, run_env = pilot.runtime(rt).build(launch, f"/opt/{rt}/bin/{rt}")
    assert argv[:2] == [f"/opt/{rt}/bin/{rt}", "exec"]
    assert {"--cleanenv", "--contain", "--nv"} <= set(argv)
    assert argv[argv.index("--home") + 1] == f"{workdir}:/srv"
    assert argv[argv.index("--pwd") + 1] == "/srv"
    assert "/cvmfs:/cvmfs:ro" in argv
    assert "/data:/data:rw" in argv
    assert argv[-3:] == ["/images/x.sif", "/bin/echo", "hi"]
    assert run_env[prefix + "TOKEN"] == "s3cret"
    assert prefix + "HOME" not in run_env
    assert not any("s3cret" in arg for arg in argv)
    assert pilot.runtime(rt).start_failure(255, "FATAL:   container creation failed") is not None


@pytest.mark.root
def test_apptainer_for_real(tmp_path: Path, apptainer_bin: Path) -> None:
    """The real Apptainer (Debian sid's, ``apptainer_bin`` of tests/conftest.py)."""
    rootfs = make_rootfs(tmp_path / "rootfs")
    proc = subprocess.run(
        [
            sys.executable,
            str(worker.pilot()),
            "--image",
            str(rootfs),
            "--runtime",
            "apptainer",
            "--workdir",
            str(tmp_path),
            "--",
            "/bin/sh",
            "-c",
            "pwd; exit 42",
        ],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{apptainer_bin}:{os.environ['PATH']}"},
    )
    assert proc.returncode == 42, proc.stderr
    assert proc.stdout.strip() == "/srv"


def test_dry_run_prints_argv_and_writes_report(tmp_path: Path) -> None:
    rootfs = make_rootfs(tmp_path / "rootfs")
    proc = subprocess.run(
        [
            sys.executable,
            str(worker.pilot()),
            "--image",
            str(rootfs),
            "--runtime",
            "proot",
            "--dry-run",
            "--workdir",
            str(tmp_path),
            "--report",
            "r.json",
            "--env",
            "A=1",
            "--",
            "/bin/sh",
            "-c",
            "exit 3",
        ],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "COPS_PILOT_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert proc.returncode == 0, proc.stderr
    assert "runtime: proot" in proc.stdout
    assert f"-r {rootfs}" in proc.stdout
    assert "'exit 3'" in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["wrapper_exit_reason"] == "dry-run"
    assert {"A", "HOME", "PATH"} <= set(report["env_names"])
    assert "COPS_PILOT_CACHE_DIR" not in report["env_names"]  # only the pass-through list leaves the host


def test_site_config_and_environment_override(pilot: ModuleType, tmp_path: Path) -> None:
    conf = tmp_path / "pilot.conf"
    conf.write_text("[pilot]\nruntimes = proot, bubblewrap\nimage_root = /site/images\n")
    settings = pilot.load_settings(str(conf), {"COPS_PILOT_IMAGE_ROOT": "/env/images"})
    assert settings.order() == ["proot", "bubblewrap"]
    assert settings.image_root == "/env/images"
    conf.write_text("[pilot]\nruntime = proot\n")
    with pytest.raises(pilot.PilotError) as info:
        pilot.load_settings(str(conf), {})
    assert info.value.code == 240
    assert "'runtime'" in info.value.what


def test_shipped_site_config_example_loads(pilot: ModuleType) -> None:
    example = Path(__file__).resolve().parents[2] / "etc" / "pilot.conf"
    settings = pilot.load_settings(str(example), {})
    assert settings.order() == pilot.split_list(pilot.DEFAULT_ORDER)  # the example states the default
    assert settings.require() is True


def test_cops_grid_pilot_runs_the_same_wrapper(tmp_path: Path) -> None:
    cli = shutil.which("cops-grid")
    assert cli is not None
    rootfs = make_rootfs(tmp_path / "rootfs")
    proc = subprocess.run(
        [
            cli,
            "pilot",
            "--image",
            str(rootfs),
            "--runtime",
            "proot",
            "--workdir",
            str(tmp_path),
            "--",
            "/bin/sh",
            "-c",
            "echo via-cli; exit 42",
        ],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "COPS_PILOT_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert proc.returncode == 42, proc.stderr
    assert proc.stdout == "via-cli\n"
    bad = subprocess.run([cli, "pilot", "--image"], check=False, capture_output=True, text=True)
    assert bad.returncode == 240
    assert bad.stderr.startswith("cops-pilot: error 240:")
    listing = subprocess.run(
        [cli, "pilot", "--list-runtimes", "--json"], check=False, capture_output=True, text=True
    )
    assert listing.returncode == 0, listing.stderr
    names = [r["name"] for r in json.loads(listing.stdout)["runtimes"]]
    assert names[:2] == ["apptainer", "singularity"]


def test_build_launch_for_benchmarks(pilot: ModuleType, tmp_path: Path) -> None:
    rootfs = make_rootfs(tmp_path / "rootfs")
    argv, env = pilot.build_launch(
        "bubblewrap", str(rootfs), ["/bin/sh", "-c", "echo $X; pwd"], str(tmp_path), env={"X": "1"}
    )
    proc = subprocess.run(argv, env=env, check=False, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "/srv"]
    results = pilot.detect(["proot", "nosuch-free"][:1])
    assert [r.name for r in results] == ["proot"]
    assert results[0].status == "ok"
