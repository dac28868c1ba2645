"""``cops-grid bench runtimes`` measures the real Apptainer (``apptainer_bin`` on PATH) in the
main table and the feature matrix, and reports ``singularity`` as the same program."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from computeops_grid.bench.features import matrix
from computeops_grid.bench.image import BenchImage
from computeops_grid.bench.rootless import works_rootless
from computeops_grid.bench.runtimes import discover

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
def on_path(apptainer_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{apptainer_bin}:{os.environ['PATH']}")


@pytest.mark.usefixtures("on_path")
def test_apptainer_and_singularity_rows(bench_image: BenchImage, scratch: Path, tmp_path: Path) -> None:
    systems, infos, adapters = discover(["apptainer", "singularity"], bench_image.rootfs, scratch, tmp_path)
    by_name = {i.name: i for i in infos}
    assert [s.name for s in systems] == ["bare-metal", "apptainer", "singularity"]
    assert by_name["apptainer"].version == by_name["singularity"].version == "1.4.5"
    assert "mode root" in by_name["apptainer"].detail
    assert "the apptainer program: `singularity --version` says 'apptainer version 1.4.5'" in (
        by_name["singularity"].detail
    )
    rows = {row["runtime"]: row for row in matrix({"apptainer": adapters["apptainer"]}, scratch)}
    row = rows["apptainer"]
    assert row["exit code"] == "42 passed"
    assert row["payload SIGKILL seen"] == "seen as 137"
    assert row["SIGTERM forwarded"] == "yes"
    assert row["binds"] == "/cvmfs ro enforced; scratch at /srv rw"
    assert row["GPU method"].startswith("--nv")
    assert ".sif" in row["image formats"]


@pytest.mark.usefixtures("on_path")
def test_apptainer_works_rootless(open_image: BenchImage, user: str, tmp_path: Path) -> None:
    """The wrapper's Apptainer as an unprivileged account: user-namespace mode."""
    _s, _i, adapters = discover(["apptainer"], open_image.rootfs, tmp_path, tmp_path)
    uid = pwd.getpwnam(user).pw_uid
    cell = works_rootless(adapters["apptainer"], tmp_path, user)
    assert cell.startswith(f"yes (as {user}, uid {uid} outside"), cell
