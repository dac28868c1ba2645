from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid.backends.base import BackendContext
from computeops_grid.backends.slurm import SlurmBackend, SlurmSettings
from tests.services.grid_jobs import image_root, pilot_file
from tests.services.slurm import SlurmCluster, start_slurm, world_dir


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    cluster = start_slurm()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def images() -> Iterator[Path]:
    import shutil

    root = image_root()
    yield root
    shutil.rmtree(root, ignore_errors=True)


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
