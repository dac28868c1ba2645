"""Shared fixtures of the bench tests: the real bench image, built once."""

from __future__ import annotations

import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid.bench.image import BenchImage, build_image
from computeops_grid.bench.workloads import Scale

USER = "copsuser"  # the account tests/pilot uses too

# small sizes: each workload runs in milliseconds, yet every checksum path is exercised
TINY = Scale(
    scalar_iters=100_000,
    simd_len=256,
    simd_reps=50,
    triad_len=10_000,
    triad_reps=3,
    files_reps=1,
    seqio_mib=2,
    procs_iters=100_000,
    gpu_threads=1024,
    gpu_iters=1000,
)


@pytest.fixture
def tiny() -> Scale:
    return TINY


@pytest.fixture(scope="session")
def bench_image(tmp_path_factory: pytest.TempPathFactory) -> BenchImage:
    return build_image(tmp_path_factory.mktemp("bench-image"))


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    d = tmp_path / "scratch"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def user() -> str:
    """An unprivileged account (created when missing) for the "works rootless" checks."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", USER], check=True)
    return USER


@pytest.fixture(scope="module")
def open_image() -> Iterator[BenchImage]:
    """The bench image where any account can read it (pytest's own tmp dirs are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="cops-bench-open-", dir="/tmp"))
    base.chmod(0o755)
    yield build_image(base / "image")
    shutil.rmtree(base, ignore_errors=True)
