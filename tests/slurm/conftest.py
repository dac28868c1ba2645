from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.slurm.backend import SlurmBackend, SlurmSettings
from tests.services.grid_jobs import pilot_file
from tests.services.slurm import SlurmCluster, world_dir

# `slurm_cluster` and `grid_images` are session fixtures of tests/conftest.py (one Slurm per session)


@pytest.fixture(scope="session")
def images(grid_images: Path) -> Path:
    return grid_images


@pytest.fixture
def jobs_dir() -> Iterator[Path]:
    import shutil

    path = world_dir("cops-slurm-jobs-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster, jobs_dir: Path, images: Path) -> SlurmBackend:
    context = BackendContext(home=jobs_dir, jobs_dir=jobs_dir, image_root=images, pilot=pilot_file())
    return SlurmBackend(SlurmSettings(slurm_conf=str(slurm_cluster.conf)), context)
