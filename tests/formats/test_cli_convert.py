"""The command line: `cops-grid convert`, `submit --dry-run` of native files, --image, exit 3."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from computeops_grid import extras
from tests.conftest import Cli
from tests.formats.conftest import NATIVE, ROOT


@pytest.fixture
def run(tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("backends:\n  arc: {ce: arc.example.org}\n")
    return Cli(home)


def test_convert_prints_yaml_and_notes(run: Cli) -> None:
    res = run("convert", str(NATIVE / "dirac-tutorial-simple.jdl"), "--image", "docker://busybox:latest")
    assert res.code == 0, res.stderr
    assert "name: Simple_Job\nimage: docker://busybox:latest\ncommand: /bin/ls\n" in res.stdout
    assert (
        f"note: {NATIVE / 'dirac-tutorial-simple.jdl'}:4: StdOutput: the job's output is kept as its log"
        in res.stderr
    )


def test_no_image_is_refused_with_the_way_out(run: Cli) -> None:
    res = run("submit", str(NATIVE / "glite-hostname.jdl"), "--dry-run")
    assert res.code == 3
    assert "glite-hostname.jdl:2: the description names no container image" in res.stderr
    assert "--image host:" in res.stderr


def test_submit_dry_run_lists_what_it_ignored(run: Cli) -> None:
    res = run("submit", str(NATIVE / "arc-staging.xrsl"), "--dry-run", "-b", "arc", "--image", "host:")
    assert res.code == 0, res.stderr
    assert "<QueueName>atlas</QueueName>" in res.stdout
    assert "host:" in res.stdout
    assert ":24: disk: ignored: the job model has no place for it" in res.stderr


def test_help_says_what_a_job_without_image_does(run: Cli) -> None:
    for command in ("submit", "convert"):
        res = run(command, "--help")
        assert res.code == 0
        assert "--image host:" in " ".join(res.stdout.split())


def test_converted_file_submits_without_image_and_paths_follow_output(run: Cli, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(NATIVE / "roundtrip", src / "roundtrip")
    shutil.copytree(NATIVE / "files", src / "files")
    out = tmp_path / "elsewhere" / "full.jdl"
    out.parent.mkdir()
    res = run("convert", str(src / "roundtrip" / "full.yaml"), "--to", "jdl", "-o", str(out))
    assert res.code == 0, res.stderr
    assert '"../src/files/input.txt"' in out.read_text()
    res = run("submit", str(out), "--dry-run", "-b", "slurm")
    assert res.code == 0, res.stderr
    assert "python:3.12-slim" in res.stdout


def test_convert_to_every_format(run: Cli, tmp_path: Path) -> None:
    hello = ROOT / "etc" / "examples" / "hello.yaml"
    for target, marker in (
        ("jdl", "JobName"),
        ("xrsl", "(jobname="),
        ("adl", "<ActivityDescription"),
        ("sub", "queue"),
    ):
        res = run("convert", str(hello), "--to", target)
        assert res.code == 0, res.stderr
        assert marker in res.stdout


def test_a_format_without_its_extra_exits_72(run: Cli) -> None:
    """JDL needs DIRACCommon (the diracx extra), submit files the htcondor bindings; xRSL nothing."""
    blocked = ",".join(extras.MODULES)
    code = (
        "import sys\nfor n in sys.argv.pop(1).split(','): sys.modules[n] = None\n"
        "from computeops_grid.cli.main import run\nrun()"
    )
    for name, extra in (
        ("dirac-tutorial-simple.jdl", "diracx"),
        ("condor-manual-sleep.sub", "htcondor"),
        ("arc-hello.xrsl", None),
    ):
        argv = [sys.executable, "-c", code, blocked, "convert", str(NATIVE / name), "--image", "x"]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "COPS_GRID_HOME": str(run.home)},
        )
        assert proc.returncode == (72 if extra else 0), proc.stderr
        if extra:
            assert f"pip install 'computeops-grid[{extra}]'" in proc.stderr
