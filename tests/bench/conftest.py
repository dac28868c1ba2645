"""Shared fixtures of the bench tests: the real bench image, built once."""

from __future__ import annotations

from pathlib import Path

import pytest

from computeops_grid.bench.image import BenchImage, build_image
from computeops_grid.bench.workloads import Scale

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
